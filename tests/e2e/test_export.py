"""The production path: a static export served by a plain web server, talking to a separately
run backend on PostgreSQL (as the README's deployment section describes)."""

from __future__ import annotations

import functools
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Browser, expect

from iris_reflex.settings import PROJECT_ROOT
from tests.conftest import create_database
from tests.e2e.conftest import app_env, free_port, start_iris

TIMEOUT = 20_000


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("iris-export")
    static_port, backend_port = free_port(), free_port()
    static_origin = f"http://127.0.0.1:{static_port}"
    backend_url = f"http://127.0.0.1:{backend_port}"
    database_url, drop = create_database("postgresql", tmp)

    build = subprocess.run(
        ["./iris", "export"],
        cwd=PROJECT_ROOT,
        env={**__import__("os").environ, "REFLEX_API_URL": backend_url},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    site = PROJECT_ROOT / "dist" / "frontend"
    assert (site / "index.html").exists()

    env = app_env(tmp, database_url) | {
        "REFLEX_BACKEND_PORT": str(backend_port),
        "REFLEX_API_URL": backend_url,
        "IRIS_ALLOWED_ORIGINS": static_origin,
    }
    backend = start_iris(
        ["backend"], env=env, log=tmp / "backend.log", ready_url=f"{backend_url}/ping"
    )
    httpd = ThreadingHTTPServer(
        ("127.0.0.1", static_port), functools.partial(_QuietHandler, directory=str(site))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield static_origin
    httpd.shutdown()
    backend.stop()
    drop()


def test_exported_frontend_talks_to_separate_backend_on_postgres(browser: Browser, deployed: str):
    context = browser.new_context()
    page = context.new_page()
    page.goto(deployed + "/register/")
    page.get_by_label("Username").fill("Export.User")
    page.get_by_label("Password", exact=True).fill("correct horse battery")
    page.get_by_label("Confirm password").fill("correct horse battery")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#signed-in-username")).to_have_text("@Export.User", timeout=TIMEOUT)
    assert page.url.startswith(deployed)
    context.close()
