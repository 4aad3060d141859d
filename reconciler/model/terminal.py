"""Text that reaches a terminal: what user-written strings may and may not carry there.

Names, condition reasons and messages, event messages and Tekton logs are written by users or
by their code. Printed as they are, an ESC or C1 control character in one of them starts a CSI
or OSC sequence: it can move the cursor, clear the screen, retitle the window, or forge lines of
output. Every text printer (`report`, `tree`, the `-o table|wide|name` printer) passes what it
prints through `printable`; data formats (`-o json|yaml`) print the values exactly.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["printable", "printable_line"]

_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 and C1 control characters and DEL, but tab and newline: what a terminal acts on (ESC
starts CSI and OSC sequences; C1's CSI and OSC do the same on some terminals)."""

REPLACEMENT: Final = "\ufffd"


def printable(text: str) -> str:
    """`text` with every control character but tab and newline replaced by U+FFFD, so that logs
    and messages written by user code cannot move the cursor, clear the screen, retitle the
    window or forge lines when printed on a terminal. Carriage return is replaced too: it would
    let a line overwrite what came before it."""
    return _CONTROL.sub(REPLACEMENT, text.replace("\r\n", "\n"))


def printable_line(text: str) -> str:
    """`printable(text)` kept on one line: each newline shown as ` ⏎ `, so that a value cannot
    start a line of its own (a forged tree node or table row)."""
    return " ⏎ ".join(printable(text).split("\n"))
