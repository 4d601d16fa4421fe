"""Nothing secret reaches a log line, and a client cannot make the server log much.

Why it is built this way:
- Reflex logs what a client sent when it cannot handle it: an event naming an unknown handler
  is logged with its payload and the connection's router data, handshake headers included,
  so the ``Cookie`` header (the HttpOnly session token) and whatever the page typed (a
  message, a password) ended up in the server's log and in Reflex's log file.
- Every log record of the process passes through ``redact`` when it is created (a record
  factory, installed at import of the app in every worker): handlers come and go (granian
  reconfigures logging in each worker after it forks, Reflex adds its own sink and file), a
  record factory stays. ``RedactSecrets`` is the same rule as a ``logging.Filter``, for
  handlers set up elsewhere.
- What is removed: cookie and authorization values, the session cookie by name, anything
  shaped like a JWT, client tokens (``token=...``, which let a new connection claim a tab's
  state) and event payloads (``payload``: whatever the page sent). Then every line is cut at
  ``MAX_LINE`` characters and a record at ``MAX_RECORD``, so a client that sends a megabyte
  of event name gets a short line, not a megabyte of log.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable
from typing import Any

from iris_reflex.paths import SESSION_COOKIE

MAX_LINE = 1000
MAX_RECORD = 20_000
REDACTED = "[redacted]"

# key: 'value' / "key": "value" / key=value, for keys whose values are secrets.
_SECRET_NAMES = r"(?:http_)?cookie|set-cookie|authorization|(?:client_|session_|access_)?token"  # noqa: S105 (names of secrets, not one)
# Each quoted form is matched by alternatives that cannot overlap (an escape, or any other
# character but the quote and the backslash), at most 4 KB long: no catastrophic
# backtracking, and bounded work per key on any input a client sends.
_QUOTED_VALUE = re.compile(
    r"(?P<key>[\"']?\b(?:" + _SECRET_NAMES + r")[\"']?\s*[:=]\s*)"
    r"(?P<value>'(?:\\.|[^'\\]){0,4096}'|\"(?:\\.|[^\"\\]){0,4096}\")",
    re.IGNORECASE | re.DOTALL,
)
_HEADER_LINE = re.compile(r"(?im)^(\s*(?:cookie|set-cookie|authorization)\s*:\s*).*$")
_BARE_VALUE = re.compile(
    r"(?P<key>\b(?:" + _SECRET_NAMES + r"|" + re.escape(SESSION_COOKIE) + r")=)[^\s&;,'\"]+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[\w.~+/=-]+")
_JWT = re.compile(r"\beyJ[\w-]*\.[\w-]+\.[\w-]*")
_PAYLOAD_KEY = re.compile(r"[\"']?\bpayload[\"']?\s*[:=]\s*", re.IGNORECASE)
_OPENERS = {"{": "}", "[": "]", "(": ")"}


def _end_of_value(text: str, start: int) -> int:
    """Where the value starting at ``start`` ends: a balanced bracket group (quotes
    respected), a quoted string, or up to the next comma or closing bracket."""
    if start >= len(text):
        return start
    first = text[start]
    if first in "'\"":
        i = start + 1
        while i < len(text) and text[i] != first:
            i += 2 if text[i] == "\\" else 1
        return min(i + 1, len(text))
    if first in _OPENERS:
        depth, quote, i = 0, "", start
        while i < len(text):
            char = text[i]
            if quote:
                if char == "\\":
                    i += 1
                elif char == quote:
                    quote = ""
            elif char in "'\"":
                quote = char
            elif char in _OPENERS:
                depth += 1
            elif char in _OPENERS.values():
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return len(text)  # unbalanced (a cut line): everything after the key goes
    match = re.compile(r"[,)}\]\n]").search(text, start)
    return match.start() if match else len(text)


def _drop_payloads(text: str) -> str:
    out, pos = [], 0
    while match := _PAYLOAD_KEY.search(text, pos):
        end = _end_of_value(text, match.end())
        out.append(text[pos : match.end()] + REDACTED)
        pos = max(end, match.end())
    out.append(text[pos:])
    return "".join(out)


def _cap(text: str) -> str:
    lines = []
    for line in text.split("\n"):
        if len(line) > MAX_LINE:
            line = f"{line[:MAX_LINE]}… [{len(line) - MAX_LINE} characters cut]"
        lines.append(line)
    capped = "\n".join(lines)
    if len(capped) > MAX_RECORD:
        capped = f"{capped[:MAX_RECORD]}… [{len(capped) - MAX_RECORD} characters cut]"
    return capped


def redact(text: str) -> str:
    """``text`` without secrets or client payloads, its lines and length capped."""
    # Cut first: the patterns then never scan more than a capped record (a secret cut in two
    # by this is still caught by its name, ``iris_session=``, or its JWT shape).
    limit = MAX_RECORD + MAX_LINE
    text = text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} characters cut]"
    text = _drop_payloads(text)
    text = _QUOTED_VALUE.sub(lambda m: f"{m['key']}{m['value'][0]}{REDACTED}{m['value'][0]}", text)
    text = _HEADER_LINE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _BARE_VALUE.sub(lambda m: m["key"] + REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    text = _JWT.sub(REDACTED, text)
    return _cap(text)


def redact_record(record: logging.LogRecord) -> None:
    """Rewrite a record in place: its message (arguments merged in), its traceback and its
    stack, each redacted and capped."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string must not lose the record
        message = f"{record.msg!r} {record.args!r}"
    record.msg, record.args = redact(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    if record.exc_text:
        # Only the redacted text is kept: a handler rendering ``exc_info`` itself (rich
        # tracebacks with locals) would show the secrets again.
        record.exc_text, record.exc_info = redact(record.exc_text), None
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactSecrets(logging.Filter):
    """``redact_record`` as a filter (it never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_installed: Callable[..., logging.LogRecord] | None = None


def install() -> None:
    """Redact every log record this process creates from now on (idempotent)."""
    global _installed
    if _installed is not None and logging.getLogRecordFactory() is _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = factory
