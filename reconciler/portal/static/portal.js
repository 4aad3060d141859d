// The portal's page: lists, one owner's path, events and logs, kept current by the server's
// event stream. Everything shown comes from the cluster and is untrusted, so it only ever goes
// into text nodes and attribute values (never markup), and links are built from fixed parts.

const api = (path) => `/ui/api/${path}`;
const state = {
  filter: { namespace: "", selector: "" },
  selected: null, // {kind, namespace, name}
  openLogs: new Set(), // stage names whose logs are shown
  config: { actions: false, live: false },
  refreshing: false,
  again: false,
};

// --- DOM helpers -------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) throw new Error("event handlers are added with addEventListener");
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function replace(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

const STATE_WORDS = { True: "Ready", False: "Not ready", Unknown: "Unknown" };

function stateBadge(condition, words = STATE_WORDS) {
  const status = condition && ["True", "False"].includes(condition.status) ? condition.status : "Unknown";
  return el("span", { class: "state", "data-state": status }, words[status] || status);
}

function ownerHash(kind, namespace, name) {
  return `#/${[kind, namespace, name].map(encodeURIComponent).join("/")}`;
}

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map((p) => {
    try { return decodeURIComponent(p); } catch { return ""; }
  });
  if (parts.length === 3 && ["Workload", "Deliverable"].includes(parts[0]) && parts[2]) {
    return { kind: parts[0], namespace: parts[1], name: parts[2] };
  }
  return null;
}

async function getJSON(path) {
  const response = await fetch(api(path), { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.error || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

// --- lists ----------------------------------------------------------------------------------

function overviewQuery() {
  const params = new URLSearchParams();
  if (state.filter.namespace) params.set("namespace", state.filter.namespace);
  if (state.filter.selector) params.set("selector", state.filter.selector);
  const query = params.toString();
  return query ? `overview?${query}` : "overview";
}

function renderNamespaces(namespaces) {
  const select = document.getElementById("namespace");
  const chosen = state.filter.namespace;
  const all = new Set(namespaces);
  if (chosen) all.add(chosen);
  replace(select, el("option", { value: "" }, "All namespaces"),
    [...all].sort().map((ns) => el("option", { value: ns, selected: ns === chosen }, ns)));
  select.value = chosen;
}

// A revision as a list shows it: a long digest cut to 12 characters (the whole in its title).
function revisionCell(revision) {
  const short = (revision || "").replace(/([0-9a-f]{12})[0-9a-f]{28,}/g, "$1…");
  return el("td", { class: "mono", "data-revision": revision || "", title: revision || null }, short);
}

function ownerRow(item, kind) {
  const current = state.selected && state.selected.kind === kind &&
    state.selected.namespace === item.namespace && state.selected.name === item.name;
  const link = el("a", { href: ownerHash(kind, item.namespace, item.name) }, item.name);
  return el("tr", {
    "data-kind": kind, "data-name": item.name, "data-namespace": item.namespace,
    "data-ready": item.ready ? item.ready.status : "Unknown", "aria-current": current ? "true" : null,
  },
  el("td", {}, link),
  el("td", {}, item.namespace),
  el("td", {}, stateBadge(item.ready), item.suspended ? el("span", { class: "reason" }, "suspended") : null,
    item.ready && item.ready.status !== "True" && item.ready.reason
      ? el("span", { class: "reason" }, item.ready.reason) : null),
  el("td", {}, item.blueprint || ""),
  revisionCell(item.revision));
}

function sourceRow(item, kind) {
  return el("tr", { "data-kind": kind, "data-name": item.name, "data-namespace": item.namespace,
    "data-ready": item.ready ? item.ready.status : "Unknown" },
  el("td", {}, item.name),
  el("td", {}, item.namespace),
  el("td", {}, stateBadge(item.ready), item.suspended ? el("span", { class: "reason" }, "suspended") : null,
    item.ready && item.ready.status !== "True" && item.ready.reason
      ? el("span", { class: "reason" }, item.ready.reason) : null),
  el("td", { class: "mono" }, kind === "GitRepository" ? (item.url || "") : (item.suspended ? "yes" : "no")),
  revisionCell(item.revision),
  state.config.actions ? el("td", {}, actionButtons({ ...item, kind }, `Actions on ${item.name}`)) : null);
}

function renderTable(id, items, row, kind, truncated) {
  const body = document.querySelector(`#${id} tbody`);
  const rows = items.map((item) => row(item, kind));
  if (rows.length === 0) {
    const columns = document.querySelectorAll(`#${id} thead th`).length;
    rows.push(el("tr", {}, el("td", { colspan: columns, class: "empty" }, "None match the filters.")));
  }
  replace(body, rows);
  const count = document.getElementById(`${id}-count`);
  count.textContent = truncated ? `(${items.length} of ${truncated})` : `(${items.length})`;
}

async function refreshLists() {
  const document_ = await getJSON(overviewQuery());
  renderNamespaces(document_.namespaces || []);
  const truncated = document_.truncated || {};
  renderTable("workloads", document_.workloads || [], ownerRow, "Workload", truncated.workloads);
  renderTable("deliverables", document_.deliverables || [], ownerRow, "Deliverable", truncated.deliverables);
  renderTable("sources", document_.sources || [], sourceRow, "GitRepository", truncated.sources);
  renderTable("kustomizations", document_.kustomizations || [], sourceRow, "Kustomization", truncated.kustomizations);
  document.getElementById("filter-error").textContent = "";
}

// --- the path ---------------------------------------------------------------------------

function conditionLine(condition) {
  if (!condition) return el("span", { class: "reason" }, "no condition yet");
  return el("span", {}, stateBadge(condition, { True: "True", False: "False", Unknown: "Unknown" }),
    condition.reason ? el("span", { class: "reason" }, condition.reason) : null);
}

function refText(ref) {
  if (!ref) return "—";
  return `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ""}${ref.name}`;
}

function renderStage(owner, stage) {
  const condition = stage.ready || null;
  const status = condition && ["True", "False"].includes(condition.status) ? condition.status : "Unknown";
  const titleId = `stage-${stage.name}`.replace(/[^A-Za-z0-9_-]/g, "_");
  const rows = [
    el("dt", {}, "Template"), el("dd", {}, stage.template ? `${stage.template.kind} ${stage.template.name}` : "—"),
    el("dt", {}, "Stamped"), el("dd", { class: "mono", "data-field": "stamped" }, refText(stage.stamped)),
    el("dt", {}, "Health"), el("dd", { "data-field": "health" }, conditionLine(stage.health),
      stage.health && stage.health.message ? el("p", { class: "message" }, stage.health.message) : null),
    el("dt", {}, "Ready"), el("dd", { "data-field": "ready" }, conditionLine(condition),
      condition && condition.message && status !== "True" ? el("p", { class: "message" }, condition.message) : null),
  ];
  if (stage.inputs && stage.inputs.length) {
    rows.push(el("dt", {}, "Inputs"), el("dd", {}, stage.inputs.join(", ")));
  }
  if (stage.outputs && stage.outputs.length) {
    rows.push(el("dt", {}, "Outputs"), el("dd", {}, el("ul", { class: "outputs" },
      stage.outputs.map((o) => el("li", { "data-output": o.name }, `${o.name}: `, el("code", {}, o.preview.trim()))))));
  }
  const item = el("li", { class: "stage", "data-stage": stage.name, "data-state": status, "aria-labelledby": titleId },
    el("h3", { id: titleId }, stage.name, " ", stateBadge(condition)),
    el("dl", {}, rows));
  if (stage.logs) {
    const panelId = `${titleId}-logs`;
    const open = state.openLogs.has(stage.name);
    const button = el("button", { type: "button", "aria-expanded": open ? "true" : "false", "aria-controls": panelId },
      open ? "Hide logs" : "Show logs");
    const panel = el("div", { class: "logs", id: panelId, hidden: !open, "aria-live": "polite" });
    button.addEventListener("click", () => {
      if (state.openLogs.has(stage.name)) state.openLogs.delete(stage.name);
      else state.openLogs.add(stage.name);
      const nowOpen = state.openLogs.has(stage.name);
      button.setAttribute("aria-expanded", nowOpen ? "true" : "false");
      button.textContent = nowOpen ? "Hide logs" : "Show logs";
      panel.hidden = !nowOpen;
      if (nowOpen) loadLogs(owner, stage.name, panel);
    });
    item.append(button, panel);
    if (open) loadLogs(owner, stage.name, panel);
  }
  return item;
}

async function loadLogs(owner, stageName, panel) {
  try {
    const logs = await getJSON(`logs/${[owner.kind, owner.namespace, owner.name, stageName].map(encodeURIComponent).join("/")}`);
    const parts = [];
    for (const run of logs.runs || []) {
      parts.push(el("h4", {}, `${run.kind} ${run.name} `, conditionLine(run.succeeded)));
      if (run.succeeded && run.succeeded.message) parts.push(el("p", { class: "message" }, run.succeeded.message));
      if (!run.steps.length) parts.push(el("p", { class: "empty" }, "No logs recorded for this run."));
      for (const step of run.steps) {
        parts.push(el("h4", {}, `step ${step.step}`), el("pre", { "data-step": step.step, tabindex: 0 }, step.log));
      }
    }
    if (!parts.length) parts.push(el("p", { class: "empty" }, "No run yet."));
    if (logs.truncated) parts.push(el("p", { class: "reason" }, "Logs cut to their last 64 KiB."));
    replace(panel, parts);
  } catch (error) {
    replace(panel, el("p", { class: "error" }, `Cannot load the logs: ${error.message}`));
  }
}

function renderEvents(events) {
  if (!events.events || !events.events.length) return el("p", { class: "empty" }, "No events.");
  return el("div", { class: "scroll" }, el("table", { class: "events" },
    el("caption", { class: "visually-hidden" }, "Events, newest first"),
    el("thead", {}, el("tr", {}, ["Type", "Reason", "Message", "Count", "Last seen"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, events.events.map((e) => el("tr", { "data-reason": e.reason },
      el("td", {}, e.type), el("td", {}, e.reason), el("td", {}, e.message),
      el("td", {}, String(e.count)), el("td", { class: "mono" }, e.lastTimestamp))))));
}

// Reconcile now, and Suspend or Resume where the server says the kind can be suspended; the
// outcome is announced in the one status region under the filters.
function actionButtons(target, label) {
  if (!state.config.actions) return null;
  const box = el("div", { class: "actions", role: "group", "aria-label": label });
  const buttons = [["reconcile", "Reconcile now"]];
  if ((state.config.suspend_kinds || []).includes(target.kind)) {
    buttons.push(target.suspended ? ["resume", "Resume"] : ["suspend", "Suspend"]);
  }
  for (const [action, text] of buttons) {
    const button = el("button", { type: "button", "data-action": action,
      "aria-label": `${text}: ${target.kind} ${target.namespace}/${target.name}` }, text);
    button.addEventListener("click", async () => {
      const status = document.getElementById("action-status");
      button.disabled = true;
      try {
        const send = () => {
          const headers = { "Content-Type": "application/json" };
          const token = sessionStorage.getItem("portal-token");
          if (token) headers.Authorization = `Bearer ${token}`;
          return fetch(api(`actions/${action}`), {
            method: "POST", headers,
            body: JSON.stringify({ kind: target.kind, namespace: target.namespace, name: target.name }),
          });
        };
        let response = await send();
        if (response.status === 401) {
          // The daemon's actions need its token (daemon.portal_token_file): asked once per tab.
          const token = window.prompt("The portal's token (daemon.portal_token_file):");
          if (token) {
            sessionStorage.setItem("portal-token", token.trim());
            response = await send();
            if (response.status === 401) sessionStorage.removeItem("portal-token");
          }
        }
        const body = await response.json().catch(() => ({}));
        status.textContent = response.ok
          ? `${text} ${target.kind} ${target.namespace}/${target.name}: requested.`
          : `${text} refused: ${body.error || response.status}`;
      } finally {
        button.disabled = false;
      }
    });
    box.append(button);
  }
  return box;
}

async function refreshDetail() {
  const detail = document.getElementById("detail");
  const selected = state.selected;
  if (!selected) return;
  const id = [selected.kind, selected.namespace, selected.name].map(encodeURIComponent).join("/");
  let owner;
  let events;
  try {
    [owner, events] = await Promise.all([getJSON(`owners/${id}`), getJSON(`events/${id}`)]);
  } catch (error) {
    replace(detail, el("h2", { id: "detail-title" }, `${selected.kind} ${selected.namespace}/${selected.name}`),
      el("p", { class: "error" }, error.status === 404 ? "It is gone from the cluster." : `Cannot load it: ${error.message}`));
    return;
  }
  if (!sameSelection(selected)) return; // another one was chosen meanwhile
  const chain = owner.blueprint ? `${owner.kind === "Workload" ? "supply chain" : "delivery"} ${owner.blueprint}` : "no blueprint selected";
  replace(detail,
    el("h2", { id: "detail-title" }, `${owner.kind} ${owner.namespace}/${owner.name}`),
    el("p", { class: "owner-state", "data-ready": owner.ready ? owner.ready.status : "Unknown" },
      stateBadge(owner.ready), owner.ready && owner.ready.reason ? el("span", { class: "reason" }, owner.ready.reason) : null,
      el("span", { class: "reason" }, ` · ${chain}`), owner.suspended ? el("span", { class: "reason" }, " · suspended") : null),
    owner.ready && owner.ready.message ? el("p", { class: "message owner-message" }, owner.ready.message) : null,
    actionButtons(owner, "Actions"),
    el("h3", {}, "Stages"),
    owner.stages.length
      ? el("ol", { class: "path", "aria-label": `Stages of ${owner.name}'s path, in order` }, owner.stages.map((s) => renderStage(owner, s)))
      : el("p", { class: "empty" }, "No stages: no blueprint selects it yet."),
    el("h3", {}, "Events"),
    renderEvents(events));
}

function markSelectedRow() {
  for (const row of document.querySelectorAll("tr[aria-current]")) row.removeAttribute("aria-current");
  const chosen = state.selected;
  if (!chosen) return;
  for (const row of document.querySelectorAll(`#workloads tr, #deliverables tr`)) {
    if (row.dataset.kind === chosen.kind && row.dataset.namespace === chosen.namespace && row.dataset.name === chosen.name) {
      row.setAttribute("aria-current", "true");
    }
  }
}

function sameSelection(selected) {
  return state.selected && selected && state.selected.kind === selected.kind &&
    state.selected.namespace === selected.namespace && state.selected.name === selected.name;
}

// --- refreshing -------------------------------------------------------------------------

async function refresh() {
  // One refresh at a time; changes during one ask for one more after it.
  if (state.refreshing) { state.again = true; return; }
  state.refreshing = true;
  try {
    do {
      state.again = false;
      try {
        await Promise.all([refreshLists(), refreshDetail()]);
      } catch (error) {
        document.getElementById("filter-error").textContent = error.message;
      }
    } while (state.again);
  } finally {
    state.refreshing = false;
    document.body.dataset.revision = String(Number(document.body.dataset.revision || 0) + 1);
  }
}

function setLive(mode, text) {
  const live = document.getElementById("live");
  live.dataset.live = mode;
  live.textContent = text;
}

function connect() {
  if (!("EventSource" in window)) { setLive("offline", "Live updates need EventSource; reload to update."); return; }
  const source = new EventSource(api("stream"));
  source.addEventListener("hello", (event) => {
    const hello = JSON.parse(event.data);
    setLive(hello.live ? "live" : "offline", hello.live ? "Live" : "This cluster gives no change notifications; reload to update.");
    refresh();
  });
  source.addEventListener("change", () => {
    setLive("live", `Live · updated ${new Date().toLocaleTimeString()}`);
    refresh();
  });
  source.addEventListener("error", () => setLive("connecting", "Reconnecting…"));
}

function applyFilterFromURL() {
  const params = new URLSearchParams(location.search);
  state.filter.namespace = params.get("namespace") || "";
  state.filter.selector = params.get("selector") || "";
  document.getElementById("selector").value = state.filter.selector;
}

async function main() {
  applyFilterFromURL();
  state.selected = parseHash();
  try { state.config = await getJSON("config"); } catch { /* read-only defaults */ }
  if (state.config.actions) {
    for (const id of ["sources", "kustomizations"]) {
      document.querySelector(`#${id} thead tr`).append(el("th", { scope: "col" }, "Actions"));
    }
  }
  document.getElementById("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    state.filter.namespace = document.getElementById("namespace").value;
    state.filter.selector = document.getElementById("selector").value.trim();
    const params = new URLSearchParams();
    if (state.filter.namespace) params.set("namespace", state.filter.namespace);
    if (state.filter.selector) params.set("selector", state.filter.selector);
    const query = params.toString();
    history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
    refresh();
  });
  document.getElementById("namespace").addEventListener("change", () => {
    document.getElementById("filters").requestSubmit();
  });
  window.addEventListener("hashchange", async () => {
    // Only the path changes: mark the chosen row, draw its path, leave the lists alone.
    const started = performance.now();
    state.selected = parseHash();
    state.openLogs.clear();
    markSelectedRow();
    try {
      await refreshDetail();
    } catch (error) {
      document.getElementById("filter-error").textContent = error.message;
    }
    document.getElementById("detail").focus();
    performance.measure("portal-path", { start: started });
  });
  await refresh();
  // The first render's time since navigation, for benchmarks/portal_render.py.
  performance.mark("portal-first-render");
  connect();
}

main();
