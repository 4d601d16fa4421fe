"""Property-based run of every ``/api`` operation against what ``/api/openapi.json`` promises.

Schemathesis generates requests from the document (valid ones and broken ones) and checks
that none causes a server error and that every answer (status, content type, body) is one the
document describes. It runs as ``ada``, signed in with a bearer token, who has a friend
``bob`` and a conversation with him; half of the generated usernames and ids are replaced by
those real ones, so the routes are exercised past "no such user" too.

Bounded: a few dozen examples per operation, no deadline (the CI machine has 2 cores), on
SQLite and PostgreSQL. A few operations are left out (``EXCLUDED`` says which and why).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from iris_reflex.api.app import create_api
from tests.api.test_api_openapi import (
    client_fixture,  # noqa: F401 (the ``client`` fixture)
    sign_up,
)

MAX_EXAMPLES = 50

# Left out: logout (it would revoke the run's token), uploads (raw bodies of random bytes
# would fill the quota; tests/api/test_media_api.py covers them) and the web session handoff.
EXCLUDED = ["/api/auth/logout", "/api/uploads", "/api/me/avatar", "/api/auth/web/session"]

schema = schemathesis.openapi.from_asgi("/api/openapi.json", create_api()).exclude(path=EXCLUDED)


@dataclass
class World:
    """The data the run acts on; ``ids`` are of rows that exist (messages, requests)."""

    headers: dict[str, str]
    ids: list[int]


_world: World | None = None


@pytest.fixture
def world(client) -> Iterator[World]:
    """Ada (signed in) and her friend Bob, a pending request from Cyd, a few messages."""
    global _world
    ada, bob, cyd = sign_up(client, "ada"), sign_up(client, "bob"), sign_up(client, "cyd")
    request = client.post("/api/friends/requests", json={"username": "bob"}, headers=ada).json()
    client.post(f"/api/friends/requests/{request['id']}/accept", headers=bob)
    pending = client.post("/api/friends/requests", json={"username": "ada"}, headers=cyd).json()
    ids = [request["id"], pending["id"]]
    for who, to in ((ada, "bob"), (bob, "ada"), (ada, "bob")):
        sent = client.post(f"/api/conversations/{to}/messages", json={"body": "hi"}, headers=who)
        ids.append(sent.json()["id"])
    _world = World(headers=ada, ids=ids)
    yield _world
    _world = None


def _real(value: object) -> st.SearchStrategy[object]:
    """The generated value, or one that names real data (half of the time each)."""
    known: list[object] = ["bob", "Bob", "cyd", "ada"]
    if _world is not None:
        known += _world.ids
    return st.one_of(st.just(value), st.sampled_from(known))


@schema.hook
def flatmap_path_parameters(_ctx, parameters):  # type: ignore[no-untyped-def]
    """Path usernames and ids: sometimes real ones."""
    if not parameters:
        return st.just(parameters)
    keys = sorted(parameters)
    return st.tuples(*(_real(parameters[k]) for k in keys)).map(
        lambda values: dict(zip(keys, values, strict=True))
    )


# Body fields that, drawn at random, almost never pass the services' rules (a timer of
# 5 s to 365 days, a non-empty text): sometimes a valid value, to reach the code after them.
VALID_SOMETIMES: dict[str, list[object]] = {
    "body": ["hello"],
    "expires_in_seconds": [None, 0, 60],
    "seconds": [None, 3600],
}


@schema.hook
def flatmap_body(_ctx, body):  # type: ignore[no-untyped-def]
    """A body's usernames and ids: sometimes real ones; other fields sometimes valid."""
    if not isinstance(body, dict):
        return st.just(body)
    strategies = {}
    for key, value in body.items():
        if key in ("username", "up_to_message_id"):
            strategies[key] = _real(value)
        elif key in VALID_SOMETIMES:
            strategies[key] = st.one_of(st.just(value), st.sampled_from(VALID_SOMETIMES[key]))
        else:
            strategies[key] = st.just(value)
    return st.fixed_dictionaries(strategies)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_api_keeps_its_documented_promises(case, world: World):
    # Always Ada's real token, also where schemathesis drew credentials of its own: the
    # point is to reach the code past authentication (401s are tested in test_api_accounts).
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    case.headers = {**headers, **world.headers}
    case.call_and_validate(checks=CHECKS)
