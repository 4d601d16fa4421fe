"""Many browser tabs on the live path, spoken in Reflex's own websocket protocol.

Each simulated tab is one signed-in user (a pair of friends per two tabs) and does what the
compiled page does, without a browser:

1. connects to socket.io on ``/_event`` (namespace ``/_event``, websocket transport only) with
   ``?token=<a new client token>`` and the ``iris_session`` cookie in the handshake, the boot
   event ``hydrate_and_load`` riding in the CONNECT packet's auth under the key ``event``;
2. lets the server run the home page's on_load events (hydrate_and_load queues
   on_load_internal, which runs the page's on_load list on the server); from what comes back,
   it answers a ``_call_script`` whose callback is an event (the time-zone question) with
   ``"UTC"``, re-emits any returned event that is not a client-side one (``_``), and ignores
   the rest (``_toast``, ``_redirect``, ...). The tab is loaded when ``is_hydrated`` turns
   true;
3. opens the conversation with its friend (``open_conversation``) and waits until a delta
   shows that friend as the active conversation.

Then messages are sent at an offered rate through ``send_message`` events, round-robin over
the pairs and alternating direction, each with a unique body. A message is delivered when a
delta for the partner's tab carries a ``messages`` list holding that body; its latency is
from just before the sender's emit to that delta's arrival (one process, one clock). Bodies
not seen ``--drain`` seconds after the last send are reported missing; each tab with missing
bodies is then opened afresh (a browser reload) to tell late from lost.

The server's CPU (its whole process tree, in % of one core) is measured over an idle window
with every tab connected and over the send phase, and its RSS before and after the tabs
connect. The bench's own CPU is printed beside it: it runs on the same machine.

Handler names come from the state classes of this checkout: the split states
(``ConversationState.open_conversation``, ``ComposerState.send_message``) when they exist,
else ``ChatState``'s. Nothing here calls a load handler: the page's own on_load list does.

Run: .venv/bin/python -m bench.load_tabs --tabs 100 --rate 20 --seconds 20
     (python-socketio's asyncio client needs aiohttp, which `./iris test` installs)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import re
import resource
import secrets
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import socketio
from reflex_base import constants
from sqlmodel import Session

from bench.common import percentiles, scratch_database, served_iris
from iris_reflex import clock
from iris_reflex.db import engine_for
from iris_reflex.models import (
    Conversation,
    Friendship,
    FriendshipStatus,
    Message,
    MessageKind,
    User,
)
from iris_reflex.services import auth, passwords, users
from iris_reflex.settings import get_settings

PASSWORD = "correct horse battery"
NAMESPACE = "/" + constants.Endpoint.EVENT.value  # socket.io path and namespace: /_event
ROOT_STATE = "reflex___state____state"
BOOT_EVENT = f"{ROOT_STATE}.{constants.CompileVars.HYDRATE_AND_LOAD}"
ROUTER_DATA = {"pathname": "/", "query": {}, "asPath": "/"}
SESSION_COOKIE = "iris_session"
# The callback of a `_call_script`, as Reflex compiles it:
# (_result) => {addEvents([ReflexEvent("<state>.set_timezone", {zone:_result})])}
CALLBACK = re.compile(r'ReflexEvent\("([^"]+)",\s*\{\s*"?(\w+)"?\s*:\s*_result\s*\}')
CONNECT_CONCURRENCY = 50
SETUP_CONCURRENCY = 16  # pairs signed up at once (argon2 runs in the server's thread pool)
LOAD_TIMEOUT = 120.0


@dataclass
class Handlers:
    """Full event names of this checkout's chat states."""

    layout: str
    open_conversation: str
    send_message: str


def handlers() -> Handlers:
    """The split states when this checkout has them, else the single ``ChatState``."""
    try:
        from iris_reflex.state.composer import ComposerState
        from iris_reflex.state.conversation import ConversationState
    except ImportError:
        from iris_reflex.state.chat import ChatState

        chat = ChatState.get_full_name()
        return Handlers("ChatState", f"{chat}.open_conversation", f"{chat}.send_message")
    return Handlers(
        "ConversationState + ComposerState",
        f"{ConversationState.get_full_name()}.open_conversation",
        f"{ComposerState.get_full_name()}.send_message",
    )


def _row_lists(delta: dict[str, Any]) -> Iterator[list[str]]:
    """The bodies of each list of message rows in a delta: any substate's ``messages``
    list (``chat_state`` before the split, ``messages_state`` after it) and its ``arrived``
    list (rows added to an open page, where the checkout has it)."""
    for substate in delta.values():
        if not isinstance(substate, dict):
            continue
        for name in ("messages_rx_state_", "arrived_rx_state_"):
            rows = substate.get(name)
            if isinstance(rows, list):
                yield [
                    row["body"]
                    for row in rows
                    if isinstance(row, dict) and isinstance(row.get("body"), str)
                ]


def _bodies(delta: dict[str, Any]) -> Iterator[str]:
    """Message bodies in a delta."""
    for bodies in _row_lists(delta):
        yield from bodies


def _repeated_rows(delta: dict[str, Any]) -> int:
    """Rows of a page (one ``messages`` or ``arrived`` list) whose body is listed there
    before: a message shown twice."""
    return sum(len(bodies) - len(set(bodies)) for bodies in _row_lists(delta))


def _field(delta: dict[str, Any], name: str) -> Iterator[Any]:
    """Every value of var ``name`` in a delta, whichever substate carries it."""
    for substate in delta.values():
        if isinstance(substate, dict) and f"{name}_rx_state_" in substate:
            yield substate[f"{name}_rx_state_"]


@dataclass
class Tab:
    """One simulated browser tab of one signed-in user."""

    username: str
    friend: str
    session_token: str
    client_token: str = field(default_factory=lambda: str(uuid.uuid4()))
    sio: socketio.AsyncClient | None = None
    hydrated: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    pending: dict[str, float] = field(default_factory=dict)  # the friend's bodies -> emit time
    latencies_ms: list[float] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)  # each delivery's emit time, in order
    echo_pending: dict[str, float] = field(default_factory=dict)  # own bodies -> emit time
    echo_ms: list[float] = field(default_factory=list)
    echo_sent_at: list[float] = field(default_factory=list)
    echo_seen: set[str] = field(default_factory=set)  # own bodies shown back (acknowledged)
    last_delivery: float = 0.0
    client_events: Counter[str] = field(default_factory=Counter)
    updates: int = 0
    error: str = ""
    disconnects: int = 0  # sockets lost (``--kill-after``: its worker died)
    reconnects: int = 0  # sockets opened again after a loss
    new_tokens: int = 0  # reconnections the server took for a duplicate tab (empty state)
    closing: bool = False
    reconnecting: asyncio.Task[None] | None = None
    refused_sends: int = 0  # sends emitted while its socket was down (never acknowledged)
    repeated_rows: int = 0  # a body listed twice in one page (must stay 0: exactly once)

    async def emit(self, name: str, payload: dict[str, Any]) -> None:
        assert self.sio is not None
        await self.sio.emit(
            "event",
            {"name": name, "payload": payload, "router_data": ROUTER_DATA},
            namespace=NAMESPACE,
        )

    async def on_update(self, update: dict[str, Any]) -> None:
        """A StateUpdate (``delta``, ``events``) from the server, as the page receives it."""
        now = time.perf_counter()
        self.updates += 1
        delta = update.get("delta") or {}
        if (self.pending or self.echo_pending) and delta:
            for body in _bodies(delta):
                if (sent := self.pending.pop(body, None)) is not None:
                    self.latencies_ms.append((now - sent) * 1000)
                    self.sent_at.append(sent)
                    self.last_delivery = now
                elif (sent := self.echo_pending.pop(body, None)) is not None:
                    self.echo_ms.append((now - sent) * 1000)
                    self.echo_sent_at.append(sent)
                    self.echo_seen.add(body)
        if delta:
            self.repeated_rows += _repeated_rows(delta)
            if True in _field(delta, constants.CompileVars.IS_HYDRATED):
                self.hydrated.set()
            if self.friend in _field(delta, "active_username"):
                self.opened.set()
        for event in update.get("events") or []:
            await self._on_event(event)

    async def _on_event(self, event: dict[str, Any]) -> None:
        name = str(event.get("name", ""))
        self.client_events[name] += 1
        if not name.startswith("_"):
            # A backend event handed to the page: the browser sends it straight back.
            await self.emit(name, event.get("payload") or {})
            return
        callback = (event.get("payload") or {}).get("callback")
        if name == "_call_script" and isinstance(callback, str):
            # The only callback on these pages asks for the browser's time zone.
            if match := CALLBACK.search(callback):
                await self.emit(match.group(1), {match.group(2): "UTC"})
        if name == "_redirect":
            self.error = f"redirected: {event.get('payload')}"


async def open_tab_socket(
    base: str,
    client_token: str,
    session_token: str,
    *,
    on_event: Callable[[dict[str, Any]], Awaitable[None]],
    on_new_token: Callable[[str], Awaitable[None]],
    on_disconnect: Callable[..., Awaitable[None]],
    timeout: float = LOAD_TIMEOUT,
) -> socketio.AsyncClient:
    """A socket opened as the page opens it: ``client_token`` in the query, the session
    cookie in the handshake, the boot event in the CONNECT packet. A half-open attempt is
    closed before the error goes on, so the token is not left linked on the server."""
    sio = socketio.AsyncClient(
        reconnection=False,
        # python-engineio moves a Cookie header into aiohttp's cookie jar, which never
        # sends cookies to an IP address such as 127.0.0.1; extra options go on as they are.
        websocket_extra_options={"headers": {"Cookie": f"{SESSION_COOKIE}={session_token}"}},
    )
    sio.on("event", on_event, namespace=NAMESPACE)
    sio.on("new_token", on_new_token, namespace=NAMESPACE)
    sio.on("disconnect", on_disconnect, namespace=NAMESPACE)
    boot = {"name": BOOT_EVENT, "payload": {}, "router_data": ROUTER_DATA}
    try:
        await sio.connect(
            f"{base}?{urllib.parse.urlencode({'token': client_token})}",
            socketio_path=NAMESPACE,
            namespaces=[NAMESPACE],
            transports=["websocket"],
            auth={constants.CompileVars.CONNECT_AUTH_EVENT: boot},
            wait_timeout=timeout,
        )
    except BaseException:
        await sio.disconnect()
        raise
    return sio


async def _open_socket(tab: Tab, base: str, *, reconnect: bool) -> None:
    """The tab's socket. ``reconnect``: a lost socket is opened again the same way, through
    ``base``, as the page does. (Not python-socketio's own reconnection: python-engineio
    pops the extra headers on the first connect, so a reconnected socket would carry no
    cookie, which a browser always sends.)"""

    async def new_token(token: str) -> None:
        # Taken for a duplicate tab: the server handed a new token and an empty state.
        tab.new_tokens += 1
        tab.client_token = token

    async def lost(*_reason: object) -> None:
        tab.disconnects += 1
        if reconnect and not tab.closing:
            tab.reconnecting = asyncio.create_task(_reopen(tab, base))

    tab.sio = await open_tab_socket(
        base,
        tab.client_token,
        tab.session_token,
        on_event=tab.on_update,
        on_new_token=new_token,
        on_disconnect=lost,
    )


async def _reopen(tab: Tab, base: str) -> None:
    """Connect a tab whose socket was lost again, with the page's back-off (200 ms more per
    failed try, at most 2 s), for up to ``LOAD_TIMEOUT``."""
    end = time.perf_counter() + LOAD_TIMEOUT
    attempt = 0
    while not tab.closing and time.perf_counter() < end:
        try:
            await _open_socket(tab, base, reconnect=True)
        except Exception:  # noqa: BLE001 - try again, as the page does
            attempt = min(attempt + 1, 10)
            await asyncio.sleep(0.2 * attempt)
            continue
        tab.reconnects += 1
        return


async def _connect(tab: Tab, base: str, open_name: str, *, reconnect: bool = False) -> None:
    """Connect, let the page load, open the conversation with the friend. ``reconnect``: a
    lost socket connects again (``--kill-after``)."""
    await _open_socket(tab, base, reconnect=reconnect)
    await asyncio.wait_for(tab.hydrated.wait(), LOAD_TIMEOUT)
    await tab.emit(open_name, {"username": tab.friend})
    await asyncio.wait_for(tab.opened.wait(), LOAD_TIMEOUT)


async def _reload_missing(tabs: list[Tab], base: str, open_name: str) -> set[str]:
    """Open each tab that has missing messages afresh (a browser reload: a new socket, the
    page loaded again) and return the messages that are still not shown. Slow is allowed
    under overload, lost is not: this tells the one from the other."""
    still: set[str] = set()
    for tab in tabs:
        if not tab.pending:
            continue
        fresh = Tab(tab.username, tab.friend, tab.session_token)
        fresh.pending = dict(tab.pending)
        try:
            await _connect(fresh, base, open_name)
        finally:
            if fresh.sio is not None and fresh.sio.connected:
                await fresh.sio.disconnect()
        still.update(fresh.pending)
    return still


def _kill_a_backend(cluster_pid: int) -> tuple[int, list[int]]:
    """``kill -9`` the Granian worker(s) of one backend of ``./iris cluster`` (the process
    tree ``cluster_pid``): the backend with the lowest pid. Returns it and what was killed."""
    tree = psutil.Process(cluster_pid).children(recursive=True)
    backends = sorted(
        (p for p in tree if "--backend-only" in " ".join(p.cmdline())),
        key=lambda p: p.pid,
    )
    top = [p for p in backends if p.ppid() not in {b.pid for b in backends}]
    if not top:
        raise SystemExit("--kill-after: no `--backend-only` process under --pid")
    workers = top[0].children()
    for worker in workers:
        worker.kill()
    return top[0].pid, [w.pid for w in workers]


def _stored_bodies(database_url: str, run_id: str) -> set[str]:
    """The bench's messages of this run that the server stored."""
    from sqlalchemy import text

    with engine_for(database_url).connect() as db:
        rows = db.execute(
            text("SELECT body FROM messages WHERE body LIKE :run"), {"run": f"lt-{run_id}-%"}
        )
        return {row[0] for row in rows}


def _seed_pairs(
    database_url: str, secret_file: Path | None, names: list[tuple[str, str]], history: int = 0
) -> list[Tab]:
    """Pairs of friends written straight into the server's database, each user signed in
    with ``auth.open_session`` (the server's token format, signed with its secret): signing
    up 1,000 users through /api costs two argon2 rounds each, minutes of the server's CPU
    before anything is measured. Every user shares one password hash. ``secret_file``: the
    secret of the server the bench started; None for a running server that reads its secret
    from this same environment and checkout (``--url`` with ``--database-url``)."""
    if secret_file is not None:
        settings = get_settings()
        settings.jwt_secret, settings.jwt_secret_file = "", secret_file
    shared_hash = passwords.hash_password(PASSWORD)
    now = clock.now()
    tabs: list[Tab] = []
    with Session(engine_for(database_url), expire_on_commit=False) as db:
        people = {}
        for name in (n for pair in names for n in pair):
            people[name] = User(
                username=name,
                username_key=users.username_key(name),
                display_name=name,
                password_hash=shared_hash,
                created_at=now,
            )
            db.add(people[name])
        db.commit()
        for a, b in names:
            low, high = sorted((people[a].id or 0, people[b].id or 0))
            db.add(
                Friendship(
                    user_low_id=low,
                    user_high_id=high,
                    requester_id=people[a].id or 0,
                    status=FriendshipStatus.ACCEPTED.value,
                    created_at=now,
                    accepted_at=now,
                )
            )
        db.commit()
        if history:
            _seed_history(db, [(people[a], people[b]) for a, b in names], history)
        for a, b in names:
            tabs += [
                Tab(a, b, auth.open_session(db, people[a]).token),
                Tab(b, a, auth.open_session(db, people[b]).token),
            ]
    return tabs


def _seed_history(db: Session, pairs: list[tuple[User, User]], count: int) -> None:
    """``count`` read messages in each pair's conversation, alternating sides, so a tab
    opens on a page of that size (a conversation with a past, as most are)."""
    now = clock.now()
    for a, b in pairs:
        assert a.id is not None and b.id is not None
        low, high = sorted((a.id, b.id))
        conversation = Conversation(user_low_id=low, user_high_id=high, created_at=now)
        db.add(conversation)
        db.flush()
        assert conversation.id is not None
        for i in range(count):
            sender, recipient = (a, b) if i % 2 == 0 else (b, a)
            db.add(
                Message(
                    conversation_id=conversation.id,
                    sender_id=sender.id or 0,
                    recipient_id=recipient.id or 0,
                    kind=MessageKind.TEXT.value,
                    body=f"earlier message {i} of {sender.username}: " + "words " * 12,
                    created_at=now,
                    read_at=now,
                )
            )
    db.commit()


async def _user(api: httpx.AsyncClient, name: str) -> str:
    response = await api.post("/api/auth/register", json={"username": name, "password": PASSWORD})
    response.raise_for_status()
    response = await api.post("/api/auth/login", json={"username": name, "password": PASSWORD})
    response.raise_for_status()
    return str(response.json()["access_token"])


async def _pair(api: httpx.AsyncClient, gate: asyncio.Semaphore, a: str, b: str) -> list[Tab]:
    """Two users who are friends, one tab each."""
    async with gate:
        tokens = [await _user(api, a), await _user(api, b)]
        bearer = [{"Authorization": f"Bearer {t}"} for t in tokens]
        request = await api.post("/api/friends/requests", json={"username": b}, headers=bearer[0])
        request.raise_for_status()
        accept = await api.post(
            f"/api/friends/requests/{request.json()['id']}/accept", headers=bearer[1]
        )
        accept.raise_for_status()
    return [Tab(a, b, tokens[0]), Tab(b, a, tokens[1])]


class ProcessTree:
    """CPU time and memory of a process and its descendants."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)

    def _procs(self) -> list[psutil.Process]:
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> dict[int, tuple[float, str]]:
        seen = {}
        for proc in self._procs():
            try:
                times = proc.cpu_times()
                seen[proc.pid] = (times.user + times.system, proc.name())
            except psutil.NoSuchProcess:
                continue
        return seen

    def rss_mb(self) -> tuple[float, float]:
        """The tree's total RSS and its largest process's, in MB."""
        sizes = []
        for proc in self._procs():
            try:
                sizes.append(proc.memory_info().rss / 2**20)
            except psutil.NoSuchProcess:
                continue
        return sum(sizes), max(sizes, default=0.0)


class CpuWindow:
    """% of one core used by a process tree (and by this bench) between start and stop."""

    def __init__(self, tree: ProcessTree | None) -> None:
        self.tree = tree
        self.me = psutil.Process()

    def __enter__(self) -> CpuWindow:
        self.wall = time.perf_counter()
        self.before = self.tree.cpu_seconds() if self.tree else {}
        self.my_before = sum(self.me.cpu_times()[:2])
        self.machine_before = psutil.cpu_times()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.wall
        after = self.tree.cpu_seconds() if self.tree else {}
        used = {pid: sec - self.before.get(pid, (0.0, ""))[0] for pid, (sec, _) in after.items()}
        self.server = 100 * sum(used.values()) / wall if self.tree else float("nan")
        top = max(used, key=used.__getitem__, default=None)
        self.top = (
            f"{after[top][1]} pid {top} {100 * used[top] / wall:.0f} %" if top is not None else ""
        )
        self.bench = 100 * (sum(self.me.cpu_times()[:2]) - self.my_before) / wall
        # The whole machine (other people's work included), in cores busy out of all.
        machine = psutil.cpu_times()
        idle = (machine.idle + machine.iowait) - (
            self.machine_before.idle + self.machine_before.iowait
        )
        total = sum(machine) - sum(self.machine_before)
        self.machine = (
            f"machine {psutil.cpu_count() * (1 - idle / total):.1f} of {psutil.cpu_count()} "
            f"cores busy, load average {os.getloadavg()[0]:.1f}"
        )


async def _loop_lag(stop: asyncio.Event, out: list[float]) -> None:
    """How late this bench's own event loop wakes up (it delays the deliveries it sees)."""
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.05)
        out.append((time.perf_counter() - start - 0.05) * 1000)


def _listening_pid(url: str) -> int | None:
    """The top process listening on ``url``'s port (for ``--url``), if this user can see it."""
    port = urllib.parse.urlsplit(url).port
    try:
        pids = {c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port}
    except psutil.AccessDenied:
        return None
    pids.discard(None)
    for pid in pids:
        try:
            if psutil.Process(pid).ppid() not in pids:
                return pid
        except psutil.NoSuchProcess:
            continue
    return None


def _server_log_summary(log: Path) -> None:
    lines = log.read_text(errors="replace").splitlines()
    flagged = [
        line
        for line in lines
        # "missed by": the app's scheduler ran late, i.e. the worker's event loop was busy.
        if re.search(
            r"Traceback|\bERROR\b|Error:|Exception|WARNING|Warning:|panicked|missed by", line
        )
        and "Node.js is out of date" not in line
    ]
    print(f"server log: {len(lines)} lines, {len(flagged)} with an error or warning ({log})")
    # Token ids and times vary: count lines by their first words.
    for line, count in Counter(line.strip()[:60] for line in flagged).most_common(8):
        print(f"  {count:5d} x {line}")


def _report_kill(
    args: argparse.Namespace,
    tabs: list[Tab],
    killed: tuple[int, list[int]],
    still_missing: set[str],
    seed: tuple[str, Path | None] | None,
    run_id: str,
) -> None:
    """What ``--kill-after`` did: the tabs that lost their socket and came back, the sends
    refused while they were down, and (given the database) whether every stored message is
    shown at its partner and every acknowledged one was stored."""
    backend, workers = killed
    lost = [tab for tab in tabs if tab.disconnects]
    back = sum(1 for tab in lost if tab.sio is not None and tab.sio.connected)
    print(
        f"| killed at {args.kill_after:.0f} s: backend pid {backend}, worker pid(s) "
        f"{', '.join(map(str, workers))} | {len(lost)} tabs lost their socket, {back} of them "
        f"connected again ({sum(t.new_tokens for t in tabs)} given a new token); "
        f"{sum(t.refused_sends for t in tabs)} sends refused while down |"
    )
    for error, count in Counter(tab.error for tab in lost if tab.error).most_common(3):
        print(f"|   {count} of those tabs: {error} |")
    if seed is not None:
        stored = _stored_bodies(seed[0], run_id)
        acked = {body for tab in tabs for body in tab.echo_seen}
        print(
            f"| stored by the server | {len(stored)}; stored yet not shown at the partner "
            f"even after a reload: {len(stored & still_missing)}; shown in the sender's tab "
            f"yet not stored: {len(acked - stored)} |"
        )
    print(f"| rows shown twice in one page (any tab) | {sum(t.repeated_rows for t in tabs)} |")


async def run(
    args: argparse.Namespace,
    base: str,
    pid: int | None,
    seed: tuple[str, Path | None] | None = None,
) -> None:
    """The bench. ``seed`` (database URL, the server's secret file) writes the users
    straight into the database instead of signing them up through /api."""
    names = handlers()
    run_id = secrets.token_hex(3)
    pairs_wanted = args.tabs // 2
    print(
        f"Iris live path under {args.tabs} websocket tabs ({pairs_wanted} pairs of friends), "
        f"handlers of {names.layout}; server {base}"
    )
    tree = ProcessTree(pid) if pid else None

    started = time.perf_counter()
    pair_names = [(f"lt{run_id}a{i}", f"lt{run_id}b{i}") for i in range(pairs_wanted)]
    if seed is not None:
        seeded = await asyncio.to_thread(_seed_pairs, *seed, pair_names, args.history)
        made = [seeded[i : i + 2] for i in range(0, len(seeded), 2)]
        how = "written to the database and signed in with auth.open_session"
        if args.history:
            how += f", {args.history} messages of history per pair"
    else:
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)
        async with httpx.AsyncClient(base_url=base, timeout=120) as api:
            made = await asyncio.gather(*(_pair(api, gate, a, b) for a, b in pair_names))
        how = "registered, signed in and befriended through /api"
    print(f"setup: {2 * pairs_wanted} users {how} in {time.perf_counter() - started:.1f} s")
    rss_before = tree.rss_mb() if tree else (float("nan"), float("nan"))

    tabs = [tab for pair in made for tab in pair]
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def connect(tab: Tab) -> None:
        async with gate:
            try:
                await _connect(
                    tab, base, names.open_conversation, reconnect=args.kill_after is not None
                )
            except Exception as exc:  # noqa: BLE001 - counted and reported, the rest go on
                tab.error = tab.error or f"{type(exc).__name__}: {exc}"[:200]

    started = time.perf_counter()
    await asyncio.gather(*(connect(tab) for tab in tabs))
    connect_s = time.perf_counter() - started
    for tab in tabs:
        if not tab.error and not (tab.hydrated.is_set() and tab.opened.is_set()):
            tab.error = "not loaded"
    failed = [tab for tab in tabs if tab.error]
    print(
        f"connect: {len(tabs) - len(failed)} of {len(tabs)} tabs loaded with their "
        f"conversation open in {connect_s:.1f} s ({CONNECT_CONCURRENCY} at a time), "
        f"{len(failed)} failed"
    )
    for error, count in Counter(tab.error for tab in failed).most_common(5):
        print(f"  {count:5d} x {error}")
    rss_connected = tree.rss_mb() if tree else (float("nan"), float("nan"))

    with CpuWindow(tree) as idle:
        await asyncio.sleep(args.idle_seconds)

    ready = [(made_pair[0], made_pair[1]) for made_pair in made]
    ready = [(a, b) for a, b in ready if not a.error and not b.error]
    for tab in tabs:
        tab.client_events.clear()
    sent = 0
    lag: list[float] = []
    # This process holds every simulated tab: a full garbage collection of it stops its loop
    # for about 250 ms with 1,000 tabs, which would show as the server's delivery latency.
    # The measured window runs without collections (the objects made until then are frozen).
    gc.collect()
    gc.freeze()
    gc.disable()
    stop_lag = asyncio.Event()
    lag_task = asyncio.create_task(_loop_lag(stop_lag, lag))
    killed: tuple[int, list[int]] | None = None
    if ready and args.rate > 0:
        interval = 1.0 / args.rate

        async def send_for(seconds: float, *, kill_after: float | None) -> None:
            """Send at ``--rate`` for ``seconds``, then wait out the rest of them."""
            nonlocal sent, killed
            start, first = time.perf_counter(), sent
            end = start + seconds
            while (due := start + (sent - first) * interval) < end:
                if (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                if (
                    killed is None
                    and kill_after is not None
                    and pid is not None
                    and time.perf_counter() - start >= kill_after
                ):
                    killed = _kill_a_backend(pid)
                a, b = ready[sent % len(ready)]
                sender, receiver = (a, b) if (sent // len(ready)) % 2 == 0 else (b, a)
                body = f"lt-{run_id}-{sent}"
                receiver.pending[body] = sender.echo_pending[body] = time.perf_counter()
                form = {"body": body, "attachment_ids": ""}
                try:
                    await sender.emit(names.send_message, {"form": form})
                except Exception:  # noqa: BLE001 - its socket is down: never sent, never acked
                    del receiver.pending[body], sender.echo_pending[body]
                    sender.refused_sends += 1
                sent += 1
            # The CPU window is the whole send phase, not just until the last emit.
            await asyncio.sleep(max(0.0, end - time.perf_counter()))

        if args.warmup > 0:  # counted for "missing", not for the figures below
            await send_for(args.warmup, kill_after=None)
        warm = sent
        with CpuWindow(tree) as busy:
            begin = time.perf_counter()
            await send_for(args.seconds, kill_after=args.kill_after)
            send_s = time.perf_counter() - begin
        sent -= warm
        rss_sent = tree.rss_mb() if tree else (float("nan"), float("nan"))
        drain_end = time.perf_counter() + args.drain
        while time.perf_counter() < drain_end and any(tab.pending for tab in tabs):
            await asyncio.sleep(0.1)
    stop_lag.set()
    await lag_task
    gc.enable()

    # With --warmup, the figures are those of the messages emitted once it was over.
    latencies = [
        ms
        for tab in tabs
        for emitted, ms in zip(tab.sent_at, tab.latencies_ms, strict=True)
        if emitted >= begin
    ]
    echoes = [
        ms
        for tab in tabs
        for emitted, ms in zip(tab.echo_sent_at, tab.echo_ms, strict=True)
        if emitted >= begin
    ]
    missing = sum(len(tab.pending) for tab in tabs)
    unanswered = sum(len(tab.echo_pending) for tab in tabs)
    # Missing at the partner although the sender's own tab showed the message (so it was
    # stored): a push lost or still queued, as opposed to a send not handled yet.
    pushed_not_seen = sum(
        1 for tab in tabs for body in tab.pending if not any(body in t.echo_pending for t in tabs)
    )
    print()
    print("| figure | value |")
    print("|---|---|")
    print(f"| tabs connected (failed) | {len(tabs) - len(failed)} ({len(failed)}) |")
    print(f"| time to connect and load every tab | {connect_s:.1f} s |")
    print(
        f"| server RSS before tabs / connected / after sending (tree; largest process) | "
        f"{rss_before[0]:.0f} / {rss_connected[0]:.0f} / "
        f"{(rss_sent if sent else rss_connected)[0]:.0f} MB; "
        f"{rss_before[1]:.0f} / {rss_connected[1]:.0f} / "
        f"{(rss_sent if sent else rss_connected)[1]:.0f} MB |"
    )
    print(
        f"| server CPU, idle, all tabs connected ({args.idle_seconds:.0f} s) | "
        f"{idle.server:.0f} % of a core ({idle.top}); bench itself {idle.bench:.0f} %; "
        f"{idle.machine} |"
    )
    if sent:
        print(
            f"| messages offered | {sent} in {send_s:.1f} s = {sent / send_s:.1f}/s "
            f"over {len(ready)} pairs |"
        )
        print(
            f"| server CPU while sending | {busy.server:.0f} % of a core ({busy.top}); "
            f"bench itself {busy.bench:.0f} %; {busy.machine} |"
        )
        for label, samples in (
            ("delivered, emit to the partner tab's delta", latencies),
            ("in the sender's own tab (its reply or a later refresh)", echoes),
        ):
            if samples:
                stats = percentiles(samples) if len(samples) > 1 else {"max": samples[0]}
                print(
                    f"| {label} | {len(samples)}: "
                    + ", ".join(f"{k} {v:.0f} ms" for k, v in stats.items())
                    + " |"
                )
        if args.warmup > 0:
            print(
                f"| warm-up before the figures (sent at the same rate, then checked for "
                f"missing with the rest) | {warm} in {args.warmup:.0f} s |"
            )
        if latencies:
            last = max(tab.last_delivery for tab in tabs)
            print(
                f"| deliveries per second (first send to last delivery) | "
                f"{len(latencies) / (last - begin):.1f} |"
            )
        if latencies and args.timeline:
            _print_timeline(tabs, begin)
        print(
            f"| missing at the partner {args.drain:.0f} s after the last send | {missing} "
            f"({pushed_not_seen} of them already in the sender's own tab; "
            f"{unanswered} sends not in the sender's own tab either) |"
        )
        still: set[str] = set()
        if missing:
            still = await _reload_missing(tabs, base, names.open_conversation)
            print(
                f"| of those, still missing once each such partner tab reloads (the newest "
                f"page, as a browser reload shows it) | {len(still)} |"
            )
        if killed is not None:
            _report_kill(args, tabs, killed, still, seed, run_id)
        print(f"| bench event-loop lag while sending, max | {max(lag, default=0):.0f} ms |")
        events = Counter()
        for tab in tabs:
            events.update(tab.client_events)
        print(
            "| client-side events received while sending | "
            + (", ".join(f"{n} {c}" for n, c in events.most_common()) or "none")
            + " |"
        )

    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    unclosed = 0

    async def close(tab: Tab) -> None:
        nonlocal unclosed
        tab.closing = True
        async with gate:
            if tab.sio is not None and tab.sio.connected:
                try:
                    await asyncio.wait_for(tab.sio.disconnect(), 10)
                except Exception:  # noqa: BLE001 - counted; the server is stopped anyway
                    unclosed += 1

    await asyncio.gather(*(close(tab) for tab in tabs))
    if unclosed:
        print(f"({unclosed} tabs did not disconnect cleanly within 10 s)")


def _print_timeline(tabs: list[Tab], begin: float) -> None:
    """Delivery latency by the second of sending each message was emitted in (negative:
    the warm-up)."""
    by_second: dict[int, list[float]] = {}
    for tab in tabs:
        for sent, ms in zip(tab.sent_at, tab.latencies_ms, strict=True):
            by_second.setdefault(math.floor(sent - begin), []).append(ms)
    print()
    print("| second of sending | delivered | p50 / p99 / max |")
    print("|---|---|---|")
    for second in sorted(by_second):
        stats = percentiles(by_second[second]) if len(by_second[second]) > 1 else None
        shown = (
            f"{stats['p50']:.0f} / {stats['p99']:.0f} / {stats['max']:.0f} ms"
            if stats
            else f"{by_second[second][0]:.0f} ms"
        )
        print(f"| {second} | {len(by_second[second])} | {shown} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tabs", type=int, default=100, help="even: one pair of friends per 2")
    parser.add_argument("--rate", type=float, default=20.0, help="messages/s offered in total")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the send phase")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="idle CPU window")
    parser.add_argument("--drain", type=float, default=20.0, help="wait after the last send")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument(
        "--database-url",
        help="use this database instead of a scratch one (with --url: the running server's)",
    )
    parser.add_argument("--url", help="an already-running Iris instead of starting one")
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="messages already in each pair's conversation (written to the database with the "
        "users): each tab opens on a page that big",
    )
    parser.add_argument(
        "--signup-api",
        action="store_true",
        help="sign users up through /api instead of writing them to the database (with "
        "--url, always unless --database-url names the running server's database, whose "
        "secret must be the one this environment and checkout give)",
    )
    parser.add_argument(
        "--kill-after",
        type=float,
        help="with --url and --pid of `./iris cluster`: kill -9 one backend's worker this many "
        "seconds into the send phase; tabs reconnect through the balancer as the page does, "
        "and with --database-url every stored message is checked at its partner",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=0.0,
        help="send at --rate for this many seconds before the measured --seconds: each tab's "
        "first events after it loaded take its states from Redis again (several workers), and "
        "with every tab starting at once that is a burst the steady state does not have",
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="also print delivery p50 / p99 / max for each second of sending (by emit time): "
        "when the slow deliveries were sent, to line them up with what the server did then",
    )
    parser.add_argument(
        "--pid",
        type=int,
        help="with --url: the process tree to measure (e.g. ./iris cluster's, which holds "
        "nginx and every backend) instead of the one listening on the URL's port",
    )
    args = parser.parse_args()
    if args.tabs < 2 or args.tabs % 2:
        parser.error("--tabs must be an even number, at least 2")
    # Each tab is a socket here and one in the server, which inherits this limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard != resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.url:
        pid = args.pid or _listening_pid(args.url)
        if pid is None:
            print("(no process found listening on that port: no server CPU or RSS figures)")
        # Given its database, a running server's users are written there directly.
        seed: tuple[str, Path | None] | None = (
            None if args.signup_api or not args.database_url else (args.database_url, None)
        )
        asyncio.run(run(args, args.url.rstrip("/"), pid, seed))
        return
    log = None
    try:
        with ExitStack() as stack:
            url = args.database_url or stack.enter_context(scratch_database(args.database))
            served = stack.enter_context(served_iris(url))
            log = served.log
            where = "the given database" if args.database_url else args.database
            print(f"./iris run (one worker) on {where}")
            seed = None if args.signup_api else (url, served.secret_file)
            asyncio.run(run(args, served.url, served.pid, seed))
    finally:
        if log is not None:  # read once the server has stopped and written everything
            _server_log_summary(log)


if __name__ == "__main__":
    main()
