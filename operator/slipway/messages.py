"""The one sanitizer of text the operator shows users: every condition message (through `set_condition`)
and every Event (through the one Event sink) goes through `sanitize`.

What reaches a message can come from anywhere: a pipeline step's log (ANSI colours, carriage returns), an
exception of a storage SDK, a file that failed to parse. Terminal escape sequences and control characters
are removed (a `kubectl describe` must not repaint the reader's terminal) and the length is bounded.

Credentials never reach a message: every value the operator reads from a Secret is registered here
(`redact`), and `sanitize` replaces any occurrence of one (a pipeline step that printed its environment,
an SDK error quoting a connection string) with REDACTED. The operator's log handlers apply the same."""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
from collections.abc import Iterable, Mapping

MESSAGE_LIMIT = 1000  # characters; at most 4 bytes each, within a Condition's 4096-byte message
ELLIPSIS = "…"
REDACTED = "[redacted]"
SHORTEST_SECRET = 6  # shorter values (a region, "true") would redact ordinary words

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


class _Secrets:
    """The values read from Secrets so far, as one pattern (longest first, so a value containing another
    is redacted whole). Process-wide on purpose: every path to a message must see every value."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, values: Iterable[str]) -> None:
        fresh = {v for v in values if len(v) >= SHORTEST_SECRET} - self._values
        if not fresh:
            return
        with self._lock:
            self._values |= fresh
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def redact(self, text: str) -> str:
        pattern = self._pattern
        return pattern.sub(REDACTED, text) if pattern is not None else text


_SECRETS = _Secrets()


def redact(data: Mapping[str, str] | None) -> None:
    """Registers a Secret's `data` (base64 values, as the API returns them): each value, encoded and
    decoded, and each line of a decoded value (a key inside a JSON or INI credentials file)."""
    values: list[str] = []
    for encoded in (data or {}).values():
        values.append(encoded)
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, ValueError):
            continue
        values += [decoded, decoded.strip(), *(line.strip() for line in decoded.splitlines())]
    _SECRETS.add(values)


def redact_values(values: Iterable[str]) -> None:
    """Registers plain values (a token already decoded)."""
    _SECRETS.add(v.strip() for v in values)


def sanitize(text: object, limit: int = MESSAGE_LIMIT) -> str:
    """`text` as one printable line: credentials redacted, escape sequences removed, whitespace runs
    (newlines too) folded into one space, other control characters dropped, at most `limit` characters
    (ending in an ellipsis when cut)."""
    line = _SECRETS.redact(_ESCAPES.sub("", str(text)))
    line = _SPACES.sub(" ", line)
    line = _CONTROLS.sub("", line).strip()
    if len(line) <= limit:
        return line
    return line[: max(0, limit - len(ELLIPSIS))].rstrip() + ELLIPSIS


class RedactingFilter(logging.Filter):
    """For the operator's log handlers: each record's message with credentials redacted (no other
    change: a log line may be long and multi-line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRETS.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            exc_text = _SECRETS.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info, record.exc_text = None, exc_text
        return True
