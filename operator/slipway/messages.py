"""The one sanitizer of text the operator shows users: every condition message (through `set_condition`)
and every Event (through the one Event sink) goes through `sanitize`.

What reaches a message can come from anywhere: a pipeline step's log (ANSI colours, carriage returns), an
exception of a storage SDK, a file that failed to parse. Terminal escape sequences and control characters
are removed (a `kubectl describe` must not repaint the reader's terminal) and the length is bounded."""

from __future__ import annotations

import re

MESSAGE_LIMIT = 1000  # characters; at most 4 bytes each, within a Condition's 4096-byte message
ELLIPSIS = "…"

# ECMA-48: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), other two-character escapes; and the 8-bit CSI.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
# C0 and C1 controls and DEL, bidirectional overrides (which reorder what a terminal shows), lone escapes.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"[ \t\r\n]+")


def sanitize(text: object, limit: int = MESSAGE_LIMIT) -> str:
    """`text` as one printable line: escape sequences removed, whitespace runs (newlines too) folded into
    one space, other control characters dropped, at most `limit` characters (ending in an ellipsis when
    cut)."""
    line = _ESCAPES.sub("", str(text))
    line = _SPACES.sub(" ", line)
    line = _CONTROLS.sub("", line).strip()
    if len(line) <= limit:
        return line
    return line[: max(0, limit - len(ELLIPSIS))].rstrip() + ELLIPSIS
