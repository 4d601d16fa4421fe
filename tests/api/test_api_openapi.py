"""The JSON API's shared test helpers, and checks of what ``/api/openapi.json`` promises.

The other ``test_api_*`` modules import the ``client`` fixture (``client_fixture``) and the
helpers from here (the file rules of this change leave no room for a ``conftest.py``):
people are made through the API itself (register, log in, befriend), as a client would.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from passlib.context import CryptContext

from iris_reflex.api.app import create_api
from iris_reflex.services import passwords
from iris_reflex.settings import get_settings

PASSWORD = "correct horse battery"
CHEAP_ARGON2 = CryptContext(
    schemes=["argon2"], argon2__memory_cost=64, argon2__rounds=1, argon2__parallelism=1
)
Headers = dict[str, str]


@pytest.fixture(name="client")
def client_fixture(
    database_url: str, session, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The API on this module's database (SQLite or PostgreSQL), emptied after the test.

    Real argon2 with the cheapest parameters: every test signs people up and in through the
    API, and the production cost (tens of ms per hash) would dominate the run.
    """
    monkeypatch.setattr(get_settings(), "database_url", database_url)
    monkeypatch.setattr(passwords, "_context", CHEAP_ARGON2)
    monkeypatch.setattr(passwords, "DUMMY_HASH", CHEAP_ARGON2.hash("dummy"))
    with TestClient(create_api(), base_url="http://testserver") as test_client:
        yield test_client


def bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """A fresh session token for ``username``."""
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def sign_up(client: TestClient, username: str) -> Headers:
    """Register ``username`` and log in; the headers that act as them."""
    response = client.post("/api/auth/register", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return bearer(login(client, username))


def befriend(client: TestClient, a: Headers, b: Headers, b_name: str) -> int:
    """``a`` asks ``b_name`` and ``b`` accepts; the request's id."""
    sent = client.post("/api/friends/requests", json={"username": b_name}, headers=a)
    assert sent.status_code == 201, sent.text
    request_id = int(sent.json()["id"])
    accepted = client.post(f"/api/friends/requests/{request_id}/accept", headers=b)
    assert accepted.status_code == 200, accepted.text
    return request_id


def ada_and_bob(client: TestClient) -> tuple[Headers, Headers]:
    """Two friends, ``ada`` and ``bob``, signed in through the API."""
    ada, bob = sign_up(client, "ada"), sign_up(client, "bob")
    befriend(client, ada, bob, "bob")
    return ada, bob


def send(client: TestClient, sender: Headers, to: str, body: str = "hi", **fields: object) -> dict:
    """Send a JSON message; the stored message as the sender sees it."""
    response = client.post(
        f"/api/conversations/{to}/messages", json={"body": body, **fields}, headers=sender
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def parse_utc(value: str) -> datetime:
    """An ISO 8601 timestamp that must be in UTC, written with ``Z`` or ``+00:00``."""
    assert value.endswith(("Z", "+00:00")), value
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None and moment.utcoffset() == UTC.utcoffset(None)
    return moment


# ------------------------------------------------------------------------- the document


def _spec(client: TestClient) -> dict:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def _operations(spec: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


# This module's routers tag their operations so; other modules (media, web session) have theirs.
OUR_TAGS = {"accounts", "friends", "conversations"}


def _ours(spec: dict) -> list[tuple[str, str, dict]]:
    return [o for o in _operations(spec) if OUR_TAGS & set(o[2].get("tags", ()))]


def test_every_json_api_error_response_is_described_as_detail(client):
    spec = _spec(client)
    ours = _ours(spec)
    assert len(ours) == 25
    for path, method, operation in ours:
        errors = {code: r for code, r in operation["responses"].items() if code.startswith("4")}
        assert errors, (method, path)
        for code, response in errors.items():
            schema = response["content"]["application/json"]["schema"]["$ref"]
            name = schema.rsplit("/", 1)[1]
            assert "detail" in spec["components"]["schemas"][name]["properties"], (path, code)


def test_signed_in_routes_declare_401_and_the_bearer_scheme(client):
    spec = _spec(client)
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    public = {"/api/auth/register", "/api/auth/login", "/api/auth/login/second-factor"}
    for path, method, operation in _ours(spec):
        if path in public:
            continue
        assert "401" in operation["responses"], (method, path)
        assert operation["security"] == [{"HTTPBearer": []}], (method, path)


def test_send_route_documents_json_and_multipart_bodies(client):
    operation = _spec(client)["paths"]["/api/conversations/{username}/messages"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {
        "application/json",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
    }
    form = content["multipart/form-data"]["schema"]["properties"]
    assert form["files"]["items"]["format"] == "binary"
    json_mode = content["application/json"]["schema"]["properties"]["timer_mode"]
    assert {"type": "string", "enum": ["from_send", "after_read"]} in json_mode["anyOf"]
    assert operation["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/MessageOut"
    }


def test_docs_page_is_served(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()
