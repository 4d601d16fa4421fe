"""Against `./iris run` itself: one origin only on the websocket and over CORS, loopback by
default, private files, and logs that keep no cookie or payload a client sent.

The socket.io clients here speak Reflex's protocol as `bench/load_tabs.py` does: namespace
and path ``/_event``, websocket transport, ``?token=`` a new client token, the cookie and the
``Origin`` in the handshake headers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import stat
import urllib.parse
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import pytest
import socketio
from reflex_base import constants

from tests.e2e.conftest import Server, app_env, free_port, start_iris, wait_for

T = TypeVar("T")

NAMESPACE = "/" + constants.Endpoint.EVENT.value
ROOT_STATE = "reflex___state____state"
FAKE_SESSION = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiIsInNpZCI6ImZha2UifQ.Zm9yZ2VkLXNpZ25hdHVyZQ"
SECRET_PAYLOAD = "payload-text-that-must-never-be-logged"


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` in a thread of its own: Playwright's sync API (the browser tests of
    this session) may hold this thread's event loop, and ``asyncio.run`` refuses to nest."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@dataclass
class App:
    url: str
    own_origin: str
    port: int
    server: Server
    tmp: Path


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """`./iris run` with default origins and host, on a free port, a fresh SQLite database and
    a generated secret; Reflex's own full log file is kept beside ours."""
    tmp = tmp_path_factory.mktemp("iris-origin")
    port = free_port()
    env = app_env(tmp, f"sqlite:///{tmp / 'iris.db'}") | {
        "REFLEX_FRONTEND_PORT": str(port),
        "REFLEX_LOG_FILE": str(tmp / "reflex-full.log"),
    }
    # The defaults are under test: nothing inherited may widen them (Reflex ignores an empty
    # REFLEX_BACKEND_HOST; an empty IRIS_ALLOWED_ORIGINS means the default origins).
    env |= {"IRIS_ALLOWED_ORIGINS": "", "REFLEX_BACKEND_HOST": ""}
    assert "IRIS_HOST" not in os.environ
    server = start_iris(
        ["run"], env=env, log=tmp / "iris-run.log", ready_url=f"http://127.0.0.1:{port}/ping"
    )
    try:
        yield App(
            url=f"http://127.0.0.1:{port}",
            own_origin=f"http://localhost:{port}",
            port=port,
            server=server,
            tmp=tmp,
        )
    finally:
        server.stop()


def _session_token(app: App, name: str) -> str:
    with httpx.Client(base_url=app.url) as api:
        password = "correct horse battery"
        api.post("/api/auth/register", json={"username": name, "password": password})
        response = api.post("/api/auth/login", json={"username": name, "password": password})
        response.raise_for_status()
        return str(response.json()["access_token"])


async def _handshake(app: App, origin: str, cookie: str) -> socketio.AsyncClient:
    """Connect like a page of ``origin`` would; raises ``socketio.exceptions.ConnectionError``
    when the server refuses the handshake."""
    client = socketio.AsyncClient(
        reconnection=False,
        # Headers go on the websocket request as they are (aiohttp's cookie jar would drop a
        # cookie for an IP address); the Origin header is what a browser sends.
        websocket_extra_options={"headers": {"Cookie": cookie, "Origin": origin}},
    )
    await client.connect(
        f"{app.url}?{urllib.parse.urlencode({'token': str(uuid.uuid4())})}",
        socketio_path=NAMESPACE,
        namespaces=[NAMESPACE],
        transports=["websocket"],
        wait_timeout=30,
    )
    return client


# --- the websocket: one origin only ----------------------------------------------------------


@pytest.mark.parametrize(
    "origin", ["http://localhost:4000", "http://evil.localhost:{port}", "null", "https://{host}"]
)
def test_a_foreign_page_cannot_open_the_websocket(app: App, origin: str):
    """Another port or subdomain is the same *site*: the browser sends the HttpOnly cookie
    there too. The handshake is refused before any handler runs."""
    cookie = f"iris_session={_session_token(app, 'victim')}"
    origin = origin.format(port=app.port, host=f"127.0.0.1:{app.port}")

    async def attempt() -> None:
        with pytest.raises(socketio.exceptions.ConnectionError):
            client = await _handshake(app, origin, cookie)
            await client.disconnect()

    _run(attempt())


@pytest.mark.parametrize("origin", ["http://localhost:{port}", "http://127.0.0.1:{port}"])
def test_our_own_pages_open_the_websocket(app: App, origin: str):
    cookie = f"iris_session={_session_token(app, 'owner')}"

    async def attempt() -> bool:
        client = await _handshake(app, origin.format(port=app.port), cookie)
        connected = client.connected and NAMESPACE in client.namespaces
        await client.disconnect()
        return connected

    assert _run(attempt())


# --- CORS -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/me", "/api/health", "/ping"])
def test_cors_answers_only_our_origin(app: App, path: str):
    token = _session_token(app, "reader")
    with httpx.Client(base_url=app.url) as http:
        cookie = {"Cookie": f"iris_session={token}"}
        foreign = http.get(path, headers={"Origin": "http://localhost:4000", **cookie})
        assert "access-control-allow-origin" not in foreign.headers
        assert "access-control-allow-credentials" not in foreign.headers
        preflight = http.options(
            path,
            headers={"Origin": "http://localhost:4000", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in preflight.headers
        own = http.get(path, headers={"Origin": app.own_origin, **cookie})
        assert own.headers["access-control-allow-origin"] == app.own_origin
        assert own.headers["access-control-allow-credentials"] == "true"


def test_cookie_logout_from_a_foreign_origin_is_refused(app: App):
    token = _session_token(app, "logoutvictim")
    with httpx.Client(base_url=app.url) as http:
        cookie = {"Cookie": f"iris_session={token}"}
        refused = http.post(
            "/api/auth/web/logout", headers={"Origin": "http://localhost:4000", **cookie}
        )
        assert refused.status_code == 403
        assert http.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


# --- loopback by default ---------------------------------------------------------------------


def _listening(port: int) -> set[str]:
    return {
        conn.laddr.ip
        for conn in psutil.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port
    }


def test_iris_run_listens_on_loopback_only(app: App):
    assert _listening(app.port) == {"127.0.0.1"}
    outside = [
        address
        for *_, (address, *_rest) in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        if not address.startswith("127.")
    ]
    for address in outside:
        with pytest.raises(OSError), socket.create_connection((address, app.port), timeout=3):
            pass


# --- private files ---------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_files_are_private(app: App):
    token = _session_token(app, "uploader")
    with httpx.Client(base_url=app.url) as http:
        response = http.post(
            "/api/uploads",
            params={"name": "n.txt"},
            content=b"private notes",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201
    for suffix in ("", "-wal", "-shm"):
        assert _mode(app.tmp / f"iris.db{suffix}") == 0o600, suffix
    assert _mode(app.tmp / "secret") == 0o600
    uploads = app.tmp / "uploads"
    entries = [uploads, *uploads.rglob("*")]
    assert any(entry.is_file() for entry in entries)
    for entry in entries:
        assert _mode(entry) == (0o700 if entry.is_dir() else 0o600), entry


# --- logs ------------------------------------------------------------------------------------


def test_an_unknown_event_leaves_no_cookie_or_payload_in_the_logs(app: App):
    """Reflex logs an event it cannot route, with its payload and the connection's headers.
    A client with a (forged) session cookie sends one with a secret payload and a huge name;
    the server's output and Reflex's own log file hold neither, and no line is long."""
    # Another cookie beside the session's: the session cookie never reaches Reflex's
    # headers (state.connections), the rest does, so the headers are logged with a cookie.
    cookie = f"theme=dark; iris_session={FAKE_SESSION}"
    marker = f"nosuchhandler{uuid.uuid4().hex}"

    async def send() -> None:
        client = await _handshake(app, app.own_origin, cookie)
        for name in (f"{ROOT_STATE}.{marker}", f"{ROOT_STATE}.{marker}{'x' * 200_000}"):
            await client.emit(
                "event",
                {"name": name, "payload": {"body": SECRET_PAYLOAD}, "router_data": {}},
                namespace=NAMESPACE,
            )
        await client.sleep(0)
        await client.disconnect()

    _run(send())
    logs = [app.tmp / "iris-run.log", app.tmp / "reflex-full.log"]

    def read(path: Path) -> str:
        # The console wraps long lines (rich, 80 columns): search the text unwrapped too.
        return path.read_text(errors="replace") if path.exists() else ""

    def logged() -> bool:
        return any(marker in read(path).replace("\n", "") for path in logs)

    wait_for(logged, deadline=30, what="the unknown event to be logged")
    for path in logs:
        text = read(path)
        if not text:
            continue
        unwrapped = text.replace("\n", "")
        assert "cookie" in unwrapped  # the headers were logged: the test saw what it guards
        for secret in (FAKE_SESSION, SECRET_PAYLOAD, "eyJhbGciOiJIUzI1NiJ9"):
            assert secret not in unwrapped, (path.name, secret)
        assert max(len(line) for line in text.splitlines()) < 2_000, path.name
        assert len(text) < 50_000, path.name  # 200 KB of event name made a short record
