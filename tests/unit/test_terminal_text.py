"""User-written names, reasons and messages cannot drive the terminal through `tree` or the
`-o table|wide|name` printer; `-o json|yaml` keep them exact (they are data, not terminal text)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from reconciler.commands.output import render as render_output
from reconciler.model.terminal import printable, printable_line
from reconciler.tree import build, render, to_json

# OSC window title, clear screen, colour, a C1 CSI, a carriage return over the line, a forged line.
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31mFAKE\x1b[0m\x9b2J\rover\nforged"
CONTROLS = "\x1b\x07\x9b\r"


def workload(name: str = "app", message: str = ESCAPES, reason: str = "Bad\x1b[5m") -> Any:
    return {
        "apiVersion": "carto.run/v1alpha1", "kind": "Workload",
        "metadata": {"name": name, "namespace": "default", "uid": "w1",
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"source": {"git": {"url": "https://example.com/x\x1b[8m.git",
                                    "ref": {"branch": "main"}}}},
        "status": {"supplyChainRef": {"name": "web\x1b]8;;http://evil\x07"},
                   "conditions": [{"type": "Ready", "status": "False", "reason": reason,
                                   "message": message}]},
    }


def child(name: str) -> Any:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "uid": "c1",
                         "ownerReferences": [{"uid": "w1", "controller": True}]}}


def test_printable_replaces_controls_but_keeps_tab_and_newline() -> None:
    assert printable("a\tb\nc\r\nd\x1b[2J\x9b\x7f") == "a\tb\nc\nd\ufffd[2J\ufffd\ufffd"
    assert printable_line("one\ntwo\x1b") == "one ⏎ two\ufffd"


@pytest.mark.parametrize("output", ["table", "wide"])
def test_table_cells_are_neutralised(output: str) -> None:
    text = render_output([workload()], "Workload", output)
    assert not any(c in text for c in CONTROLS), repr(text)
    lines = text.splitlines()
    assert len(lines) == 2, lines  # the newline in the message forged no row
    assert "Bad\ufffd[5m" in lines[1]
    if output == "wide":
        assert "\ufffd]0;pwned\ufffd\ufffd[2J\ufffd[31mFAKE\ufffd[0m\ufffd2J over forged" in (
            lines[1])  # CR is whitespace in a cell
        assert "web\ufffd]8;;http://evil\ufffd" in lines[1]
        assert "x\ufffd[8m.git@main" in lines[1]


def test_names_are_neutralised_in_name_output() -> None:
    text = render_output([workload(name="a\x1b[2Jb\nc")], "Workload", "name")
    assert text == "workload.carto.run/a\ufffd[2Jb c"


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_json_and_yaml_keep_the_values_exact(output: str) -> None:
    obj = workload(name="a\x1b[2Jb")
    text = render_output([obj], "Workload", output, single=True)
    parsed = json.loads(text) if output == "json" else yaml.safe_load(text)
    assert parsed == obj


def test_tree_labels_are_neutralised_and_json_is_exact() -> None:
    objects = [workload(reason="Bad\x1b[5m\nWorkload/default/forged  Ready=True"),
               child("cm\x1b[2J")]
    text = render(build(objects))
    assert not any(c in text for c in CONTROLS), repr(text)
    lines = text.splitlines()
    assert lines == [
        "Workload/default/app  Ready=False (Bad\ufffd[5m ⏎ Workload/default/forged  Ready=True)"
        "  supply chain: web\ufffd]8;;http://evil\ufffd",
        "└── ConfigMap/default/cm\ufffd[2J  Healthy",
    ]
    doc = to_json(build(objects))
    assert doc[0]["state"] == "Ready=False (Bad\x1b[5m\nWorkload/default/forged  Ready=True)"
    assert doc[0]["children"][0]["object"] == "ConfigMap/default/cm\x1b[2J"


def test_an_error_quoting_user_text_is_printed_without_its_control_characters(
        capsys: pytest.CaptureFixture[str]) -> None:
    from reconciler.commands.common import fail

    with pytest.raises(SystemExit) as exited:
        fail("Workload/evil\x1b]0;owned\x07: bad \x1b[2J field")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert err.startswith("error: Workload/evil")
