"""End-to-end fixtures: Iris started the way the README starts it, driven by Chromium.

Nothing here sleeps to win a race: every wait polls a condition until a deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from iris_reflex.settings import PROJECT_ROOT

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM = os.environ.get("IRIS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_DEADLINE = 420.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], *, deadline: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {deadline:.0f}s waiting for {what}")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
            return response.status < 500
    except OSError:
        return False


@dataclass
class Server:
    """A process started by ``./iris``, with its log."""

    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def start_iris(command: list[str], *, env: dict[str, str], log: Path, ready_url: str) -> Server:
    """Run ``./iris <command>`` in its own process group and wait until ``ready_url`` answers."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["./iris", *command],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, log)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"./iris {' '.join(command)} exited:\n{server.tail()}")
        return answers(ready_url)

    try:
        wait_for(ready, deadline=START_DEADLINE, what=f"{ready_url} ({log})")
    except BaseException:
        server.stop()
        raise
    return server


def app_env(tmp: Path, database_url: str) -> dict[str, str]:
    """Settings for an app under test: its own database, secret and upload folder."""
    return {
        "IRIS_DATABASE_URL": database_url,
        "IRIS_JWT_SECRET_FILE": str(tmp / "secret"),
        "IRIS_JWT_SECRET": "",
        "IRIS_UPLOAD_DIR": str(tmp / "uploads"),
        # Reflex's own (public) upload folder defaults to the same ``uploaded_files``;
        # point it at ours as the default layout does, so tests prove nothing leaks there.
        "REFLEX_UPLOADED_FILES_DIR": str(tmp / "uploads"),
    }


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: `./iris test` installs it.")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class RunningApp:
    """An app started by ``./iris run`` and where its data lives."""

    url: str
    database: Path
    uploads: Path


@pytest.fixture(scope="module")
def iris_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The app as the README runs it (``./iris run``), on a free port and a fresh SQLite."""
    tmp = tmp_path_factory.mktemp("iris-run")
    port = free_port()
    env = app_env(tmp, f"sqlite:///{tmp / 'iris.db'}")
    # A different backend port on purpose: `./iris run` serves everything on the frontend port
    # and must ignore one left set (Reflex alone refuses --single-port with two ports).
    env |= {"REFLEX_FRONTEND_PORT": str(port), "REFLEX_BACKEND_PORT": str(free_port())}
    server = start_iris(
        ["run"], env=env, log=tmp / "iris-run.log", ready_url=f"http://127.0.0.1:{port}/ping"
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers(url + "/login"), deadline=60, what="the login page")
    yield RunningApp(url=url, database=tmp / "iris.db", uploads=tmp / "uploads")
    server.stop()


@pytest.fixture(scope="module")
def iris_url(iris_app: RunningApp) -> str:
    """The running app's address."""
    return iris_app.url


def screenshot(page: Page, name: str) -> Path:
    """Save a PNG under test-artifacts/ for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


AXE = PROJECT_ROOT / ".tools" / "node_modules" / "axe-core" / "axe.min.js"
AXE_RUN = """
async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} at `
      + v.nodes.slice(0, 4).map((n) => n.target.join(' ') + ' (' + n.failureSummary + ')')
        .join(' | '));
}
"""


def serious_accessibility_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now (empty is good)."""
    if not AXE.exists():
        pytest.fail(f"axe-core not found at {AXE}: `./iris test` installs it.")
    # A toast fading in or out is half transparent; judge its colours once it has settled.
    # Hovering the toaster pauses every toast's timer (Sonner), so none starts fading out
    # between that wait and axe reading its colours.
    toasts = page.locator("[data-sonner-toast]")
    if toasts.count():
        with contextlib.suppress(PlaywrightError):  # it may have gone in between
            toasts.first.hover(timeout=2_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-sonner-toast]')]"
        ".every((t) => getComputedStyle(t).opacity === '1')",
        timeout=15_000,
    )
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(AXE_RUN)
    page.mouse.move(0, 0)  # let toasts time out again
    return found
