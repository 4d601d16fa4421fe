"""``./iris dev`` (hot reload) serves a working app, and the app's own writes never restart it.

Reflex's dev server restarts the backend when a watched file changes. It used to watch the whole
top level of the repository, where the default layout keeps the SQLite database: every write
touched ``iris.db-wal`` and restarted the backend, in a loop. So this test keeps its data inside
the repository's top level too (in the git-ignored ``test-artifacts/``), signs a person up in
Chromium, befriends and talks with a second person who uses the JSON API, and then checks from
the log that the backend was started once and never again.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import (
    ARTIFACTS,
    START_DEADLINE,
    Server,
    answers,
    app_env,
    free_port,
    start_iris,
    wait_for,
)
from tests.e2e.test_accounts import PASSWORD
from tests.e2e.test_chat import TIMEOUT, friends_tab, signed_up

# Granian's lines when the dev backend (re)starts a worker or reloads.
RESTARTS = re.compile(r"Changes detected|Killing (old )?worker|Stopping worker")


@dataclass
class DevApp:
    url: str
    api: str
    server: Server

    def worker_spawns(self) -> int:
        return self.server.log.read_text(errors="replace").count("Spawning worker")


@pytest.fixture(scope="module")
def dev_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevApp]:
    """``./iris dev`` on two free ports, its data in the repository as in the default layout."""
    ARTIFACTS.mkdir(exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="dev-", dir=ARTIFACTS))
    frontend, backend = free_port(), free_port()
    env = app_env(data, f"sqlite:///{data / 'iris.db'}") | {
        "REFLEX_FRONTEND_PORT": str(frontend),
        "REFLEX_BACKEND_PORT": str(backend),
        # Granian reports worker starts and reloads at info level.
        "REFLEX_LOGLEVEL": "info",
    }
    log = tmp_path_factory.mktemp("iris-dev") / "iris-dev.log"
    server = start_iris(["dev"], env=env, log=log, ready_url=f"http://127.0.0.1:{backend}/ping")
    try:
        url = f"http://localhost:{frontend}"
        wait_for(lambda: answers(url + "/register"), deadline=START_DEADLINE, what="the frontend")
        yield DevApp(url=url, api=f"http://127.0.0.1:{backend}", server=server)
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


def test_dev_server_signs_up_and_delivers_without_restarting(browser: Browser, dev_app: DevApp):
    ada = signed_up(browser, dev_app.url, "Ada")

    with httpx.Client(base_url=dev_app.api, timeout=30) as api:
        registered = api.post("/api/auth/register", json={"username": "Bob", "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        login = api.post("/api/auth/login", json={"username": "Bob", "password": PASSWORD})
        bob = {"Authorization": f"Bearer {login.json()['access_token']}"}
        request = api.post("/api/friends/requests", json={"username": "ada"}, headers=bob)
        assert request.status_code == 201, request.text

        # Ada accepts in the page; Bob's message reaches her open conversation live.
        friends_tab(ada)
        ada.get_by_role("button", name="Accept Bob").click(timeout=TIMEOUT)
        ada.get_by_role("button", name="Message Bob").click(timeout=TIMEOUT)
        expect(ada.locator("#conversation-title")).to_contain_text("Bob", timeout=TIMEOUT)
        sent = api.post("/api/conversations/Ada/messages", json={"body": "hi"}, headers=bob)
        assert sent.status_code == 201, sent.text
        expect(ada.locator(".message-theirs .message-body")).to_have_text("hi", timeout=TIMEOUT)

        # Ada answers from the composer; Bob's client finds it.
        composer = ada.get_by_label("Message", exact=True)
        composer.fill("hello Bob")
        composer.press("Enter")

        def bob_has_the_answer() -> bool:
            page = api.get("/api/conversations/Ada/messages", headers=bob).json()
            return any(m["body"] == "hello Bob" for m in page)

        wait_for(bob_has_the_answer, deadline=TIMEOUT / 1000, what="Ada's answer in Bob's API")

    log = dev_app.server.log.read_text(errors="replace")
    assert dev_app.worker_spawns() == 1, f"the backend restarted:\n{dev_app.server.tail(60)}"
    assert not RESTARTS.search(log), f"the backend reloaded:\n{dev_app.server.tail(60)}"
