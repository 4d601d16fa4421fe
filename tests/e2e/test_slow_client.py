"""A client that stops reading never holds up anyone else, and loses nothing itself.

Against ``./iris run`` (one worker), with tabs that speak Reflex's own websocket protocol (the
client of ``bench/load_tabs.py``). One tab runs in a process of its own that is frozen with
``SIGSTOP`` once its conversation is open: a browser whose machine hangs, or whose network
went quiet without closing the connection. Its friend then sends it messages large enough to
fill every buffer on the way, so the server holds data it cannot write to that socket (read
from the kernel's socket table, so the test knows the client really is stalled), while
another pair of tabs talks. Every one of their messages must arrive while the frozen tab is
still frozen; once it thaws, it must show every message it was sent.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import select
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil

from bench.load_tabs import Tab, _connect, _pair, handlers
from tests.e2e.conftest import RunningApp

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 90.0
TO_FROZEN = 60  # messages the frozen tab is sent
BODY_SIZE = 3_900  # characters each: a delta carries the whole page, so ~7 MB in all
BETWEEN_OTHERS = 20  # messages the other pair exchanges while it is frozen

# The frozen tab: connect, load, open the conversation, say so, then print every body that
# reaches it (one per line), forever.
FROZEN_TAB = """
import asyncio, sys
from bench.load_tabs import Tab, _bodies, _connect, handlers

async def main(url, username, friend, token):
    tab = Tab(username, friend, token)
    seen = set()
    async def on_update(update):
        await Tab.on_update(tab, update)
        for body in _bodies(update.get("delta") or {}):
            if body not in seen:
                seen.add(body)
                print("got", body[:16], flush=True)
    tab.on_update = on_update
    await _connect(tab, url, handlers().open_conversation)
    tab.sio.on("disconnect", lambda *_: print("disconnected", flush=True), namespace="/_event")
    print("loaded", flush=True)
    await asyncio.Event().wait()

asyncio.run(main(*sys.argv[1:5]))
"""


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` in a thread of its own: Playwright's sync API (the browser tests of
    this session) may hold this thread's event loop, and ``asyncio.run`` refuses to nest."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _read_until(process: subprocess.Popen[bytes], wanted: str, *, deadline: float) -> list[str]:
    """Lines the process prints, up to the first that starts with ``wanted``. Its stdout is
    unbuffered on this side: a buffered reader could hold lines that ``select`` no longer
    sees waiting in the pipe."""
    assert process.stdout is not None
    lines: list[str] = []
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        ready, _, _ = select.select([process.stdout], [], [], end - time.monotonic())
        if not ready:
            break
        line = process.stdout.readline().decode()
        if not line:
            break
        lines.append(line.strip())
        if line.startswith(wanted):
            return lines
    raise AssertionError(f"{wanted!r} never came; the tab printed: {lines[-5:]}")


def _queued_bytes(port_of_client: int, server_port: int) -> tuple[int, int]:
    """(bytes the frozen client has not read, bytes the server could not send yet) on the
    client's connection, from /proc/net/tcp (rx_queue of one end, tx_queue of the other)."""
    unread = unsent = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                local, remote = (int(a.rsplit(":", 1)[1], 16) for a in fields[1:3])
                tx, rx = (int(n, 16) for n in fields[4].split(":"))
                if local == port_of_client and remote == server_port:
                    unread = max(unread, rx)
                if local == server_port and remote == port_of_client:
                    unsent = max(unsent, tx)
    return unread, unsent


def _client_port(pid: int, server_port: int) -> int:
    for connection in psutil.Process(pid).net_connections(kind="tcp"):
        if connection.raddr and connection.raddr.port == server_port:
            return int(connection.laddr.port)
    raise AssertionError("the frozen tab has no connection to the server")


async def _wait(condition: Any, what: str) -> None:
    """Poll ``condition`` until it holds (a state that must come, never an absence)."""
    end = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _make_pairs(url: str, run: str) -> tuple[list[Tab], list[Tab]]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as api:
        gate = asyncio.Semaphore(2)
        frozen_pair, talking_pair = await asyncio.gather(
            _pair(api, gate, f"fz{run}", f"fy{run}"), _pair(api, gate, f"ta{run}", f"tb{run}")
        )
    return frozen_pair, talking_pair


async def _while_frozen(url: str, yara: Tab, ada: Tab, bob: Tab, frozen: Any) -> list[str]:
    """The frozen tab's friend fills its socket; the other pair talks meanwhile. Returns the
    bodies sent to the frozen tab."""
    names = handlers()
    for tab in (yara, ada, bob):
        await _connect(tab, url, names.open_conversation)
    to_frozen = [f"{i:04d}-{'x' * BODY_SIZE}" for i in range(TO_FROZEN)]
    for body in to_frozen:
        yara.echo_pending[body] = time.perf_counter()
        await yara.emit(names.send_message, {"form": {"body": body}})
    await _wait(lambda: not yara.echo_pending, "the sender's own tab to show every message")
    await _wait(frozen, "the server to hold data it cannot send to the frozen tab")
    for i in range(BETWEEN_OTHERS):
        body = f"while frozen {i}"
        bob.pending[body] = time.perf_counter()
        await ada.emit(names.send_message, {"form": {"body": body}})
    await _wait(lambda: not bob.pending, "every message between the other two")
    for tab in (yara, ada, bob):
        assert tab.sio is not None
        await tab.sio.disconnect()
    return to_frozen


def test_a_frozen_client_slows_no_one_and_loses_nothing(iris_app: RunningApp) -> None:
    url = iris_app.url
    server_port = int(url.rsplit(":", 1)[1])
    run = secrets.token_hex(3)
    (xavier, yara), (ada, bob) = _run(_make_pairs(url, run))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            FROZEN_TAB,
            url,
            xavier.username,
            xavier.friend,
            xavier.session_token,
        ],
        stdout=subprocess.PIPE,
        bufsize=0,
        env=env,
        cwd=ROOT,
    )
    try:
        _read_until(process, "loaded", deadline=DEADLINE)
        client_port = _client_port(process.pid, server_port)
        process.send_signal(signal.SIGSTOP)

        def stalled() -> bool:
            unread, unsent = _queued_bytes(client_port, server_port)
            return unread > 0 and unsent > 0

        to_frozen = _run(_while_frozen(url, yara, ada, bob, stalled))

        # The other pair's messages all arrived while the server still held data for the
        # frozen tab: its socket held up nobody.
        unread, unsent = _queued_bytes(client_port, server_port)
        assert unread > 0 and unsent > 0, (unread, unsent)
        assert not bob.pending and len(bob.latencies_ms) == BETWEEN_OTHERS

        process.send_signal(signal.SIGCONT)
        last = f"got {to_frozen[-1][:12]}"
        printed = _read_until(process, last, deadline=DEADLINE)
        got = {line.removeprefix("got ") for line in printed if line.startswith("got ")}
        # Every message sent to it is shown once it reads again: the backlog waited for it.
        assert {body[:16] for body in to_frozen} <= got
    finally:
        process.send_signal(signal.SIGCONT)
        process.kill()
        process.wait()
