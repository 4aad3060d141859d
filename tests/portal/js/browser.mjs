// A browser the pytest side steers, one JSON command per stdin line, one JSON answer per stdout
// line: playwright-core driving Debian's chromium (no browser of playwright's own).
//
//   {"op": "goto", "url": ...}                     -> {"ok": true}
//   {"op": "click" | "press" | "fill" | "select", "selector": ..., "value"?: ...}
//   {"op": "wait", "selector": ..., "text"?: ..., "attr"?: ..., "value"?: ..., "gone"?: true}
//   {"op": "text" | "count" | "attr", "selector": ..., "attr"?: ...}
//   {"op": "eval", "expression": ...}              -> {"ok": true, "value": ...}
//   {"op": "screenshot", "path": ..., "fullPage"?: bool}
//   {"op": "viewport", "width": ..., "height": ...}
//   {"op": "navigations"}                          -> how many times the main frame navigated
//   {"op": "close"}
// A failure answers {"ok": false, "error": ...}; console errors and page errors are kept and
// returned by {"op": "errors"}.
import { createInterface } from "node:readline";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const modules = process.env.PLAYWRIGHT_MODULES;
const { chromium } = require(modules ? `${modules}/playwright-core` : "playwright-core");

const timeout = Number(process.env.PORTAL_TIMEOUT_MS || 20000);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, ignoreHTTPSErrors: true });
const page = await context.newPage();
page.setDefaultTimeout(timeout);
const errors = [];
let navigations = 0;
page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
page.on("console", (message) => { if (message.type() === "error") errors.push(`console: ${message.text()}`); });
page.on("dialog", (dialog) => { errors.push(`dialog: ${dialog.message()}`); dialog.dismiss(); });
page.on("framenavigated", (frame) => { if (frame === page.mainFrame()) navigations += 1; });

async function wait(command) {
  const locator = page.locator(command.selector).first();
  if (command.gone) {
    await locator.waitFor({ state: "detached" });
    return;
  }
  await locator.waitFor({ state: "attached" });
  if (command.text !== undefined) {
    await page.waitForFunction(([selector, text]) => [...document.querySelectorAll(selector)]
      .some((node) => node.textContent.includes(text)), [command.selector, command.text], { timeout });
  }
  if (command.attr !== undefined) {
    await page.waitForFunction(([selector, attr, value]) => [...document.querySelectorAll(selector)]
      .some((node) => node.getAttribute(attr) === value), [command.selector, command.attr, command.value], { timeout });
  }
}

async function run(command) {
  switch (command.op) {
    case "goto": await page.goto(command.url); return null;
    case "click": await page.locator(command.selector).first().click(); return null;
    case "press": await page.locator(command.selector).first().press(command.value); return null;
    case "keyboard": await page.keyboard.press(command.value); return null;
    case "fill": await page.locator(command.selector).first().fill(command.value); return null;
    case "select": await page.locator(command.selector).first().selectOption(command.value); return null;
    case "wait": await wait(command); return null;
    case "text": return await page.locator(command.selector).first().textContent();
    case "texts": return await page.locator(command.selector).allTextContents();
    case "count": return await page.locator(command.selector).count();
    case "attr": return await page.locator(command.selector).first().getAttribute(command.attr);
    case "eval": return await page.evaluate(command.expression);
    case "screenshot": await page.screenshot({ path: command.path, fullPage: Boolean(command.fullPage) }); return null;
    case "viewport": await page.setViewportSize({ width: command.width, height: command.height }); return null;
    case "navigations": return navigations;
    case "errors": return errors;
    default: throw new Error(`unknown op ${command.op}`);
  }
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const command = JSON.parse(line);
  if (command.op === "close") break;
  let answer;
  try {
    answer = { ok: true, value: await run(command) };
  } catch (error) {
    answer = { ok: false, error: String(error && error.message ? error.message : error) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
await browser.close();
