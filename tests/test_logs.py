"""No log line carries a session cookie, a token or what a client sent, and a client cannot
make one line long. (The running app is checked end to end in tests/e2e/test_origin.py.)"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from iris_reflex import logs

COOKIE = "iris_session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlLXZhbHVl"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlLXZhbHVl"
SECRET_BODY = "the-message-nobody-else-reads"


@pytest.fixture
def installed() -> Iterator[None]:
    previous = logging.getLogRecordFactory()
    logs.install()
    yield
    logging.setLogRecordFactory(previous)


def event_repr() -> str:
    """What Reflex prints for an event it cannot handle (its repr, with router data)."""
    return str(
        {
            "token": "0f8e1c9a-client-token",
            "name": "reflex___state____state.no_such_handler",
            "router_data": {"headers": {"cookie": COOKIE, "origin": "http://localhost:3000"}},
            "payload": {"body": SECRET_BODY, "nested": {"x": ["}", "'"]}},
        }
    )


def test_records_lose_cookies_tokens_and_payloads(installed, caplog):
    log = logging.getLogger("reflex.app")
    with caplog.at_level(logging.INFO):
        log.warning("Received event with no handler. Event data: %s", event_repr())
        log.info('{"cookie": "%s", "payload": {"body": "%s"}}', COOKIE, SECRET_BODY)
        log.info("GET /_event/?token=0f8e1c9a-client-token&EIO=4 Authorization: Bearer %s", TOKEN)
        try:
            raise ValueError(f"bad event {event_repr()}")
        except ValueError:
            log.exception("Backend exception")
    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "no_such_handler" in text  # what happened is still there
    for secret in (COOKIE, TOKEN, "eyJ", SECRET_BODY, "0f8e1c9a-client-token"):
        assert secret not in text, secret
    assert text.count(logs.REDACTED) >= 8


def test_a_client_cannot_make_a_long_line(installed, caplog):
    with caplog.at_level(logging.WARNING):
        logging.getLogger("reflex.state").warning("unknown event %s", "n" * 1_000_000)
        logging.getLogger("engineio.server").warning("many lines\n" + "x\n" * 100_000)
    lines = caplog.text.splitlines()
    assert max(len(line) for line in lines) < logs.MAX_LINE + 100
    assert len(caplog.text) < 2 * logs.MAX_RECORD + 1000
    assert "characters cut" in caplog.text


def test_the_filter_form_rewrites_a_record_in_place():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "headers %s", (COOKIE,), None)
    assert logs.RedactSecrets().filter(record)
    assert record.getMessage() == f"headers iris_session={logs.REDACTED}"


@pytest.mark.parametrize(
    "hostile",
    [
        "cookie: '" + "\\" * 5_000,  # unclosed quote full of escapes: no backtracking blow-up
        "payload={" * 5_000,  # unbalanced groups: one scan, not one per key
        ("token='" + "a" * 50) * 2_000,
    ],
    ids=["unclosed-escapes", "unbalanced-payloads", "many-tokens"],
)
def test_hostile_text_is_redacted_in_bounded_work(hostile):
    redacted = logs.redact(hostile)
    assert len(redacted) < logs.MAX_RECORD + 2 * logs.MAX_LINE
