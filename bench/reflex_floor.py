"""What Reflex alone costs per chat message, with no Iris code, database or Redis under it.

Iris's live path runs, per message, one Reflex event (the sender's ``send_message``) and two
pushes through ``app.modify_state`` (the message to the partner's tab, the read receipt
back to the sender's). This bench builds the smallest Reflex app that does the same three
state updates and nothing else (a state with a short list of rows and a tick counter; no
database, no session check; ``state_manager_mode="memory"``, one worker; ``--redis URL``
keeps it in Redis as each backend of ``./iris cluster`` does) and
drives it with the same simulated tabs as ``bench.load_tabs`` (python-socketio on
``/_event``, a client token each, pairs of tabs). What one message costs this app is the
floor under Iris's cost on the same machine: Reflex's event processing, state locking,
delta computation, JSON encoding, socket.io and the ASGI server.

``--pushes`` takes the message apart: 0 runs the sender's event only (its own delta is what
is timed), 1 adds the delivery to the partner, 2 (default) adds the receipt.

Run: .venv/bin/python -m bench.reflex_floor --rate 200 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import socketio
from reflex_base import constants

from bench.common import free_port, percentiles
from bench.load_tabs import CpuWindow, ProcessTree

NAMESPACE = "/" + constants.Endpoint.EVENT.value
ROOT_STATE = "reflex___state____state"
CHAT_STATE = f"{ROOT_STATE}.floor___floor____chat"
ROUTER_DATA = {"pathname": "/", "query": {}, "asPath": "/"}

APP = '''
"""The smallest chat Reflex can run: rows in state, pushed to the partner's tab."""

import asyncio

import reflex as rx

PUSHES = int({pushes})


class Chat(rx.State):
    rows: list[str] = []  # the newest 16 rows, as Iris's ``arrived`` list
    read_up_to: int = 0

    @rx.event
    async def send(self, peer: str, body: str):
        self.rows = [*self.rows[-15:], body]
        if PUSHES:
            # After the handler, as Iris's outbox runs its fan-out.
            asyncio.get_running_loop().create_task(
                deliver(self.router.session.client_token, peer, body)
            )


async def deliver(sender: str, peer: str, body: str) -> None:
    async with app.modify_state(rx.BaseStateToken(ident=peer, cls=Chat)) as root:
        chat = await root.get_state(Chat)
        chat.rows = [*chat.rows[-15:], body]
    if PUSHES > 1:
        async with app.modify_state(rx.BaseStateToken(ident=sender, cls=Chat)) as root:
            chat = await root.get_state(Chat)
            chat.read_up_to += 1


def index() -> rx.Component:
    return rx.text(Chat.rows.length())


app = rx.App()
app.add_page(index)
'''

CONFIG = """
import os

import reflex as rx

REDIS = os.environ.get("FLOOR_REDIS_URL")
config = rx.Config(
    app_name="floor",
    state_manager_mode="redis" if REDIS else "memory",
    redis_url=REDIS,
    telemetry_enabled=False,
)
"""


@dataclass
class Tab:
    token: str = field(default_factory=lambda: str(uuid.uuid4()))
    sio: socketio.AsyncClient | None = None
    pending: dict[str, float] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    last: float = 0.0

    async def on_update(self, update: dict[str, Any]) -> None:
        now = time.perf_counter()
        for substate in (update.get("delta") or {}).values():
            for body in substate.get("rows_rx_state_", ()) if isinstance(substate, dict) else ():
                if (sent := self.pending.pop(body, None)) is not None:
                    self.latencies_ms.append((now - sent) * 1000)
                    self.last = now


async def _connect(tab: Tab, base: str) -> None:
    tab.sio = socketio.AsyncClient(reconnection=False)
    tab.sio.on("event", tab.on_update, namespace=NAMESPACE)
    boot = {"name": f"{ROOT_STATE}.hydrate", "payload": {}, "router_data": ROUTER_DATA}
    await tab.sio.connect(
        f"{base}?{urllib.parse.urlencode({'token': tab.token})}",
        socketio_path=NAMESPACE,
        namespaces=[NAMESPACE],
        transports=["websocket"],
        auth={constants.CompileVars.CONNECT_AUTH_EVENT: boot},
    )


def _write_app(folder: Path, pushes: int) -> None:
    (folder / "floor").mkdir()
    (folder / "floor" / "__init__.py").write_text("")
    (folder / "floor" / "floor.py").write_text(APP.replace("{pushes}", str(pushes)))
    (folder / "rxconfig.py").write_text(textwrap.dedent(CONFIG))


async def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if process.poll() is not None:
                sys.exit(f"the floor app exited:\n{log.read_text()[-3000:]}")
            try:
                if (await client.get(url + "/ping")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    sys.exit("the floor app did not start")


async def run(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="iris-floor-"))
    _write_app(folder, args.pushes)
    port = free_port()
    log = folder / "run.log"
    env = os.environ | {"REFLEX_TELEMETRY_ENABLED": "false", "PYTHONPATH": str(folder)}
    if args.redis:
        # One worker on Redis, as each backend of ``./iris cluster``: the opportunistic lock
        # keeps a busy tab's states in memory, written back once per hold.
        env |= {"FLOOR_REDIS_URL": args.redis, "REFLEX_OPLOCK_ENABLED": "true"}
        env |= {"GRANIAN_WORKERS": "1"}
    reflex = Path(sys.executable).with_name("reflex")
    command = [str(reflex), "run", "--env", "prod", "--backend-only", "--backend-port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_ready(base, process, log)
        await _measure(args, base, process.pid)
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


async def _measure(args: argparse.Namespace, base: str, pid: int) -> None:
    tabs = [Tab() for _ in range(args.tabs)]
    for start in range(0, len(tabs), 50):
        await asyncio.gather(*(_connect(tab, base) for tab in tabs[start : start + 50]))
    pairs = [(tabs[i], tabs[i + 1]) for i in range(0, len(tabs) - 1, 2)]
    parts = ["the sender's event", "the delivery push", "the receipt push"][: args.pushes + 1]
    print(
        f"Reflex floor: {len(tabs)} tabs, {len(pairs)} pairs, per message "
        f"{' + '.join(parts)}; one worker, {'Redis' if args.redis else 'memory'} state, "
        f"no database; {base}"
    )
    # Warm up: every tab's state exists before the measured window.
    for a, b in pairs:
        assert a.sio is not None
        body = f"warm-{a.token}"
        (b if args.pushes else a).pending[body] = time.perf_counter()
        await a.sio.emit("event", _send(a, b, body), namespace=NAMESPACE)
    while any(tab.pending for tab in tabs):
        await asyncio.sleep(0.05)
    for tab in tabs:
        tab.latencies_ms.clear()

    gc.collect()
    gc.freeze()
    gc.disable()
    sent = 0
    interval = 1.0 / args.rate
    with CpuWindow(ProcessTree(pid)) as busy:
        begin = time.perf_counter()
        end = begin + args.seconds
        while (due := begin + sent * interval) < end:
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            a, b = pairs[sent % len(pairs)]
            sender, receiver = (a, b) if (sent // len(pairs)) % 2 == 0 else (b, a)
            body = f"m{sent}"
            # With no push, the sender's own delta (its row) is what is timed.
            (receiver if args.pushes else sender).pending[body] = time.perf_counter()
            assert sender.sio is not None
            await sender.sio.emit("event", _send(sender, receiver, body), namespace=NAMESPACE)
            sent += 1
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        send_s = time.perf_counter() - begin
    drain_end = time.perf_counter() + args.drain
    while time.perf_counter() < drain_end and any(tab.pending for tab in tabs):
        await asyncio.sleep(0.1)
    gc.enable()

    latencies = [ms for tab in tabs for ms in tab.latencies_ms]
    missing = sum(len(tab.pending) for tab in tabs)
    last = max((tab.last for tab in tabs), default=begin)
    delivered_per_s = len(latencies) / (last - begin) if latencies else 0.0
    stats = percentiles(latencies) if len(latencies) > 1 else {}
    print()
    print("| figure | value |")
    print("|---|---|")
    print(f"| messages offered | {sent} in {send_s:.1f} s = {sent / send_s:.1f}/s |")
    print(
        f"| server CPU while sending | {busy.server:.0f} % of a core; "
        f"bench itself {busy.bench:.0f} %; {busy.machine} |"
    )
    print(f"| deliveries per second | {delivered_per_s:.1f} |")
    print("| delivery latency | " + ", ".join(f"{k} {v:.0f} ms" for k, v in stats.items()) + " |")
    print(f"| missing {args.drain:.0f} s after the last send | {missing} |")
    if latencies:
        per_message = busy.server / 100 * send_s / len(latencies) * 1000
        print(f"| server CPU per delivered message | {per_message:.2f} ms |")
    for tab in tabs:
        if tab.sio is not None:
            await tab.sio.disconnect()


def _send(sender: Tab, receiver: Tab, body: str) -> dict[str, Any]:
    payload = {"peer": receiver.token, "body": body}
    return {"name": f"{CHAT_STATE}.send", "payload": payload, "router_data": ROUTER_DATA}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tabs", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200.0, help="messages/s offered")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--drain", type=float, default=20.0)
    parser.add_argument("--pushes", type=int, choices=[0, 1, 2], default=2)
    parser.add_argument("--redis", help="keep state in this Redis (a scratch db: it is used)")
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
