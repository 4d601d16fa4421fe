"""Live delivery latency: from a sender pressing Enter to the message on the friend's screen.

Starts Iris the way the README does (``./iris run``, production build, fresh SQLite or the
PostgreSQL you name; one worker, or several with ``IRIS_REDIS_URL`` set), opens two headless
Chromium tabs as two friends, and sends N messages one after another. The receiver's page
records, with a MutationObserver, the moment each message's bubble appears; the sender's page
records the moment before Enter. Both tabs live in one browser on one machine, so
``Date.now()`` is one clock.

Run: .venv/bin/python -m bench.delivery_latency [--messages 500] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench.common import fmt, percentiles
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, app_env, free_port, start_iris

OBSERVER = """
() => {
  window.__arrivals = {};
  const seen = (node) => {
    if (!(node instanceof Element)) return;
    const bodies = node.matches('.message-theirs .message-body')
      ? [node] : node.querySelectorAll('.message-theirs .message-body');
    for (const b of bodies) {
      const text = b.textContent;
      if (text && !(text in window.__arrivals)) window.__arrivals[text] = Date.now();
    }
  };
  new MutationObserver((records) => {
    for (const r of records) {
      for (const n of r.addedNodes) seen(n);
      if (r.type === 'characterData') seen(r.target.parentElement);
    }
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}
"""


def _register(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/register")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill("correct horse battery")
    page.get_by_label("Confirm password").fill("correct horse battery")
    page.get_by_role("button", name="Create account").click()
    page.locator("#signed-in-username").wait_for(timeout=30_000)


def _wait(predicate, deadline: float, what: str) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.005)
    raise TimeoutError(what)


def run(messages: int, database_url: str | None) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="iris-bench-"))
    port = free_port()
    env = app_env(tmp, database_url or f"sqlite:///{tmp / 'bench.db'}")
    env |= {"REFLEX_FRONTEND_PORT": str(port), "REFLEX_BACKEND_PORT": str(port)}
    server = start_iris(
        ["run"], env=env, log=tmp / "run.log", ready_url=f"http://127.0.0.1:{port}/ping"
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            ada = browser.new_context().new_page()
            bob = browser.new_context().new_page()
            _register(ada, base, "ada")
            _register(bob, base, "bob")
            ada.get_by_role("radio", name="Friends").click()
            ada.get_by_label("Find people by username").fill("bob")
            ada.get_by_role("button", name="Send friend request to bob").click()
            bob.get_by_role("radio", name="Friends").click()
            bob.get_by_role("button", name="Accept ada").click(timeout=30_000)
            for page, friend in ((ada, "bob"), (bob, "ada")):
                page.get_by_role("button", name=f"Message {friend}").click(timeout=30_000)
                page.locator("#conversation-title").wait_for(timeout=30_000)
            bob.evaluate(OBSERVER)
            composer = ada.get_by_label("Message", exact=True)
            latencies: list[float] = []
            started = time.perf_counter()
            for i in range(messages):
                text = f"m{i:05d}"
                composer.fill(text)
                sent_at = ada.evaluate("Date.now()")
                composer.press("Enter")
                _wait(
                    lambda t=text: bob.evaluate(f"'{t}' in window.__arrivals"),
                    30,
                    f"message {text} to arrive",
                )
                latencies.append(bob.evaluate(f"window.__arrivals['{text}']") - sent_at)
            elapsed = time.perf_counter() - started
            browser.close()
    finally:
        server.stop()
    kind = "PostgreSQL" if database_url and "postgres" in database_url else "SQLite"
    workers = (
        f"Redis state, {os.environ.get('GRANIAN_WORKERS', 'default')} workers"
        if os.environ.get("IRIS_REDIS_URL")
        else "one worker"
    )
    print(f"live delivery, {messages} messages, {workers}, {kind}:")
    print(f"  send -> friend's screen: {fmt(percentiles([float(x) for x in latencies]))}")
    print(f"  sequential rate: {messages / elapsed:.1f} messages/s (each waits for the last)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = parser.parse_args()
    run(args.messages, args.database_url)


if __name__ == "__main__":
    main()
