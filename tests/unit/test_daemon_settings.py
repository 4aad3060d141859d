"""ListenAddress.parse: HOST:PORT forms accepted, everything else refused with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.model.errors import InputError
from reconciler.settings import DaemonSettings, ListenAddress


@pytest.mark.parametrize(("text", "host", "port"), [
    ("127.0.0.1:8080", "127.0.0.1", 8080),
    (":9090", "0.0.0.0", 9090),
    ("localhost:0", "localhost", 0),
    ("[::1]:8080", "::1", 8080),
])
def test_parse_accepts(text: str, host: str, port: int) -> None:
    assert ListenAddress.parse(text) == ListenAddress(host, port)


@pytest.mark.parametrize(("text", "message"), [
    ("8080", "not HOST:PORT"),
    ("127.0.0.1:", "not HOST:PORT"),
    ("127.0.0.1:http", "not HOST:PORT"),
    ("127.0.0.1:70000", "not HOST:PORT"),
    ("::1:8080", "IPv6 host in brackets"),
])
def test_parse_refuses(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        ListenAddress.parse(text)


@pytest.mark.parametrize(("state", "data_dir", "expected"), [
    (None, None, None),
    (Path("s/state.json"), None, Path("s/state.json.d")),
    (Path("s/state.json"), Path("data"), Path("data")),
    (None, Path("data"), Path("data")),
])
def test_data_dir_defaults_beside_the_state_file(
    state: Path | None, data_dir: Path | None, expected: Path | None
) -> None:
    assert DaemonSettings(state=state, data_dir=data_dir).resolved_data_dir == expected
