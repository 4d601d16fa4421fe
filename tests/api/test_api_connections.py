"""Every request hands its database connection back, whether its service committed, only
read (the transaction still open when the request ends) or refused mid-transaction.
``deps.db_session`` opens the session on the event loop and closes it there, or in a thread
when a transaction is still open."""

from __future__ import annotations

from iris_reflex.db import engine_for
from tests.api.test_api_openapi import (
    ada_and_bob,
    client_fixture,  # noqa: F401 (the ``client`` fixture)
    send,
)


def test_no_request_keeps_a_database_connection(client, database_url):
    ada, bob = ada_and_bob(client)
    pool = engine_for(database_url).pool

    send(client, ada, "bob", "hi")  # a write: the service committed
    assert client.get("/api/conversations", headers=bob).status_code == 200  # a read
    refused = client.post("/api/conversations/nobody/messages", json={"body": "x"}, headers=ada)
    assert refused.status_code == 404  # refused after its first statement
    assert client.get("/api/me", headers=bob).status_code == 200

    assert pool.checkedout() == 0  # type: ignore[attr-defined]
