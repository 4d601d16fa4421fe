"""Several backends behind nginx (``./iris cluster``), and one of them killed under load.

The cluster is started as the README starts it: three single-worker backends, Debian's nginx
in front, Redis for tab state and the tab registry, a scratch PostgreSQL database. Tabs are
simulated in Reflex's own websocket protocol (the client of ``bench/load_tabs.py``), each one
signed-in user with one friend; each connects first straight to one backend's port, so the
spread is known: four tabs per backend, and every pair of friends split over two backends.

What counts as *acknowledged*: a message whose row is in the database. The database is the
ground truth of what the app accepted, whoever sent it and whichever worker stored it; a send
the dying worker never stored was never accepted (the page's own event is lost with the
socket, as in a browser). At the end, every acknowledged message must be in the page of both
its sender's and its recipient's tab, once, and no tab may hold anything of another pair.

The kill comes the moment the database holds a message that a tab on the dying worker just
sent to a friend on another backend, and that pair sends nothing more: only the survivors'
recovery can still bring it to the friend's tab. One other tab on the dying worker is
"closed" as it dies (it never reconnects): its friend must see it go offline, which needs
the dead worker's socket records to be dropped.

Nothing sleeps to win a race: waits poll a condition with a deadline. The only pauses are the
offered send rate and a reconnecting tab's back-off, which is what the page does too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import os
import pickle
import re
import secrets
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import socketio
import sqlalchemy as sa
from playwright.sync_api import Browser

from bench.load_tabs import (
    NAMESPACE,
    ROUTER_DATA,
    _pair,
    handlers,
    open_tab_socket,
)
from iris_reflex.db import engine_for
from tests.conftest import create_database
from tests.e2e.conftest import Server, answers, app_env, free_port, start_iris, wait_for
from tests.e2e.test_chat import signed_up

# The open page's rows, then the rows of messages that arrived since (state/conversation.py).
_MESSAGE_LISTS = ("messages_rx_state_", "arrived_rx_state_")
REDIS_URL = os.environ.get("IRIS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BACKENDS = 3
PAIRS = 6  # 12 tabs: 4 on each backend, each pair split over two backends
SEND_RATE = 8.0  # messages per second, round-robin over the pairs, alternating direction
SENDS_BEFORE_KILL = 24
SENDS_AFTER_KILL = 40
AFTER_KILL_PAIRS = (1, 2, 4, 5)  # pair 0's last message and pair 3's closed tab are watched
DEADLINE = 90.0  # for any one condition (a dead worker's Redis lock may hold a tab ~10 s)
ATTEMPT_SECONDS = 20.0  # one reconnection attempt (longer than that lock's 10 s expiry)


def _redis_or_skip() -> None:
    import redis

    try:
        redis.from_url(REDIS_URL).ping()
    except redis.exceptions.ConnectionError as exc:
        message = f"Redis is not reachable at {REDIS_URL}: {exc}"
        if os.environ.get("IRIS_REQUIRE_REDIS") == "1":
            pytest.fail(message + " (IRIS_REQUIRE_REDIS=1 forbids skipping)")
        pytest.skip(message)


@dataclass
class Cluster:
    url: str  # the balancer: pages and backend on one origin
    backends: dict[int, int]  # port -> pid of the backend process (its process group)
    database_url: str
    run_dir: Path
    server: Server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    _redis_or_skip()
    tmp = tmp_path_factory.mktemp("iris-cluster")
    database_url, drop = create_database("postgresql", tmp)
    port = free_port()
    run_dir = tmp / "run"
    env = app_env(tmp, database_url) | {
        "IRIS_REDIS_URL": REDIS_URL,
        # Other runs may share this Redis database: Iris's own keys get a prefix of their own.
        "IRIS_REDIS_PREFIX": f"iris-test-{secrets.token_hex(4)}:",
        "REFLEX_FRONTEND_PORT": str(port),
        "IRIS_CLUSTER_DIR": str(run_dir),
    }
    url = f"http://127.0.0.1:{port}"
    server = start_iris(
        ["cluster", "--backends", str(BACKENDS)],
        env=env,
        log=tmp / "cluster.log",
        ready_url=url + "/ping",
    )
    try:
        wait_for(
            lambda: "Iris cluster on" in server.log.read_text(errors="replace"),
            deadline=120,
            what=f"every backend answering ({server.log})",
        )
        backends = {}
        for line in (run_dir / "backends").read_text().split("\n"):
            if line.strip():
                backend_port, pid = line.split()
                backends[int(backend_port)] = int(pid)
        assert len(backends) == BACKENDS
        assert answers(url + "/login/"), "the balancer does not serve the exported pages"
        yield Cluster(url, backends, database_url, run_dir, server)
    finally:
        server.stop()
        drop()
        _forget_redis_keys(env["IRIS_REDIS_PREFIX"])


def _forget_redis_keys(prefix: str) -> None:
    """This run's Iris keys (the registry, the roll of workers) leave the shared Redis."""
    import redis

    client = redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)


def _redis_keys_holding(needles: set[bytes]) -> list[str]:
    """Keys of the test Redis database whose value contains any of ``needles``."""
    import redis

    client = redis.from_url(REDIS_URL)
    found = []
    for key in client.scan_iter(count=500):
        kind = client.type(key)
        if kind == b"string":
            values = [client.get(key) or b""]
        elif kind == b"hash":
            values = list(client.hgetall(key).values())
        elif kind == b"set":
            values = list(client.smembers(key))
        else:
            continue
        if any(needle in value for value in values for needle in needles):
            found.append(key.decode(errors="replace"))
    client.close()
    return found


class _Captured:
    """Stands in for a state class while a stored pickle is opened without unsealing it."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.state = state


class _OpenPickle(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("iris_reflex.state."):
            return _Captured
        return super().find_class(module, name)


def _bodies_sealed_in_redis(cluster: Cluster, token: str) -> list[str] | None:
    """The bodies a tab's ``MessagesState`` holds in Redis, unsealed with the cluster's key
    (the test reads the secret its backends generated): its rows' (``messages`` then
    ``arrived``), then its page's (the same messages: twice each). None when the key is
    missing."""
    import redis

    from iris_reflex.state import sealed
    from iris_reflex.state.conversation import MessagesState

    label = MessagesState.get_full_name()
    client = redis.from_url(REDIS_URL)
    value = client.get(f"{token}_{label}")
    client.close()
    if value is None:
        return None
    _schema, captured = _OpenPickle(io.BytesIO(value)).load()  # noqa: S301 - our own cluster
    secret = (cluster.run_dir.parent / "secret").read_text().strip()
    fields = sealed.unseal(
        captured.state[sealed.SEALED_KEY], label=label, cipher=sealed.cipher_for(secret)
    )
    shown = [*fields["messages"], *fields["arrived"]]  # the page, then what arrived since
    return [row.body for row in shown] + [view.body for view in fields["_views"]]


async def _rehydrate(tab: ClusterTab) -> list[str]:
    """Close the tab's socket and open it again with its token, as a reloaded page does:
    the updates it is sent from then on (the hydrate first), as JSON."""
    await tab.close()
    tab.closing = False
    seen = len(tab.received)
    await tab.connect(tab.lb_url)
    await asyncio.wait_for(tab.hydrated.wait(), DEADLINE)
    await _until(lambda: tab.active == tab.friend, "the conversation open again")
    return tab.received[seen:]


def test_refuses_to_start_without_redis(tmp_path: Path):
    """Several backends without Redis would each keep their own tabs: refused, with why."""
    env = {k: v for k, v in os.environ.items() if k != "IRIS_REDIS_URL"}
    env["IRIS_CLUSTER_DIR"] = str(tmp_path / "run")
    done = subprocess.run(
        ["./iris", "cluster"],
        cwd=Path(__file__).parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "IRIS_REDIS_URL" in done.stderr
    assert not (tmp_path / "run").exists()


def test_a_person_signs_up_in_the_browser_through_the_balancer(browser: Browser, cluster: Cluster):
    """The exported pages, the cookie handoff under /api and the websocket, all through nginx
    on one origin."""
    page = signed_up(browser, cluster.url, "Cluster.Ada")
    assert page.url.startswith(cluster.url)
    page.context.close()


# ---- a simulated tab that reconnects as the page does ----------------------------------


def _pair_of(body: str) -> str:
    """Bodies are ``c<run>p<pair>n<seq>``: the pair they belong to."""
    return body.split("n", 1)[0]


@dataclass
class ClusterTab:
    """One signed-in user's tab. Keeps what the page would show (the open conversation's
    bubbles, the sidebar rows, who is signed in) from the deltas it receives, and reconnects
    through the balancer when its socket drops, with the same client token, as the page does
    (its boot event is the same hydrate-and-load, so on_load runs again)."""

    username: str
    friend: str
    session_token: str
    pair: str
    client_token: str
    sio: socketio.AsyncClient | None = None
    backend: str = ""  # where it is connected now (a backend's URL, or the balancer's)
    connected: bool = False
    hydrated: asyncio.Event = field(default_factory=asyncio.Event)
    shown: list[str] = field(default_factory=list)  # bodies of the open conversation
    lists: dict[str, list[str]] = field(default_factory=dict)  # ...by the list showing them
    active: str = ""
    presence: str = ""  # the open conversation's friend: "online", or when last seen
    stays_away: bool = False  # a tab closed while its worker died: it never comes back
    echoes: set[str] = field(default_factory=set)  # own bodies seen in own deltas
    leaks: list[str] = field(default_factory=list)
    redirects: list[Any] = field(default_factory=list)
    new_tokens: int = 0
    reconnects: int = 0
    queued: list[dict[str, Any]] = field(default_factory=list)  # sent while offline
    reconnecting: asyncio.Task[None] | None = None
    closing: bool = False
    lb_url: str = ""  # the balancer, where a dropped tab reconnects
    errors: list[str] = field(default_factory=list)  # failed reconnection attempts
    connected_at_end: bool = False  # before the test closed it
    received: list[str] = field(default_factory=list)  # every update, as JSON (hydrates too)

    def _check(self, substate: dict[str, Any]) -> None:
        for key, value in substate.items():
            if key in _MESSAGE_LISTS and isinstance(value, list):
                bodies = [str(row.get("body", "")) for row in value if isinstance(row, dict)]
                self.leaks += [f"bubble {b!r}" for b in bodies if _pair_of(b) != self.pair]
                self.lists[key] = bodies
                self.shown = [body for name in _MESSAGE_LISTS for body in self.lists.get(name, [])]
                self.echoes.update(bodies)
            elif key == "username_rx_state_" and value not in ("", self.username):
                self.leaks.append(f"signed in as {value!r}")
            elif key == "active_presence_rx_state_":
                self.presence = str(value)
            elif key == "active_username_rx_state_":
                if value not in ("", self.friend):
                    self.leaks.append(f"conversation with {value!r}")
                self.active = str(value)
            elif key == "chat_rows_rx_state_" and isinstance(value, list):
                names = {str(row.get("username")) for row in value if isinstance(row, dict)}
                self.leaks += [f"sidebar row {n!r}" for n in names - {self.friend}]
            elif key == "is_hydrated_rx_state_" and value is True:
                self.hydrated.set()

    async def on_update(self, update: dict[str, Any]) -> None:
        self.received.append(json.dumps(update))
        for substate in (update.get("delta") or {}).values():
            if isinstance(substate, dict):
                self._check(substate)
        for event in update.get("events") or []:
            name = str(event.get("name", ""))
            payload = event.get("payload") or {}
            if not name.startswith("_"):
                await self.emit(name, payload)
            elif name == "_call_script" and "set_timezone" in str(payload.get("callback")):
                callback = str(payload["callback"])
                handler = callback.split('ReflexEvent("', 1)[1].split('"', 1)[0]
                await self.emit(handler, {"zone": "UTC"})
            elif name == "_redirect":
                self.redirects.append(payload)

    async def on_new_token(self, token: str) -> None:
        """The server refused this tab's token as in use elsewhere and gave it a new one (and
        a new, empty state): what the page does, it keeps the new one."""
        self.new_tokens += 1
        self.client_token = token

    async def emit(self, name: str, payload: dict[str, Any]) -> None:
        event = {"name": name, "payload": payload, "router_data": ROUTER_DATA}
        if not self.connected or self.sio is None:
            self.queued.append(event)  # the page queues events until its socket is back
            return
        try:
            await self.sio.emit("event", event, namespace=NAMESPACE)
        except socketio.exceptions.SocketIOError:
            self.queued.append(event)

    async def connect(self, base: str, timeout: float = DEADLINE) -> None:
        self.hydrated.clear()
        sio = await open_tab_socket(
            base,
            self.client_token,
            self.session_token,
            on_event=self.on_update,
            on_new_token=self.on_new_token,
            on_disconnect=self._on_disconnect,
            timeout=timeout,
        )
        self.sio, self.backend, self.connected = sio, base, True
        queued, self.queued = self.queued, []
        for event in queued:
            await self.emit(event["name"], event["payload"])

    async def _on_disconnect(self, *_reason: object) -> None:
        self.connected = False
        if not self.closing and not self.stays_away and self.reconnecting is None:
            self.reconnecting = asyncio.create_task(self._reconnect())

    async def _reconnect(self) -> None:
        """Back through the balancer, with the page's back-off (200 ms per failed try)."""
        assert self.lb_url
        attempt = 0
        end = time.monotonic() + DEADLINE
        try:
            while not self.closing and time.monotonic() < end:
                try:
                    await self.connect(self.lb_url, timeout=ATTEMPT_SECONDS)
                except Exception as exc:  # noqa: BLE001 - kept for the report; try again
                    self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    attempt = min(attempt + 1, 10)
                    await asyncio.sleep(0.2 * attempt)
                    continue
                self.reconnects += 1
                return
        finally:
            self.reconnecting = None

    async def close(self) -> None:
        self.closing = True
        if self.sio is not None and self.sio.connected:
            await self.sio.disconnect()


async def _until(condition: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``DEADLINE``."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        result = condition()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {DEADLINE:.0f}s waiting for {what}")


def _stored(database_url: str, run: str) -> dict[str, set[str]]:
    """Every message of this run in the database (the acknowledged ones), by pair."""
    with engine_for(database_url).connect() as conn:
        bodies = conn.execute(
            sa.text("SELECT body FROM messages WHERE body LIKE :p"), {"p": f"c{run}p%"}
        ).scalars()
        stored: dict[str, set[str]] = {}
        for body in bodies:
            stored.setdefault(_pair_of(body), set()).add(body)
        return stored


def _kill_once_stored(database_url: str, body: str, pid: int) -> None:
    """SIGKILL ``pid`` the moment the message ``body`` is committed (polling the database
    without pause, on one connection, so the kill follows the commit within milliseconds)."""
    end = time.monotonic() + DEADLINE
    query = sa.text("SELECT 1 FROM messages WHERE body = :b")
    with engine_for(database_url).connect() as conn:
        while conn.execute(query, {"b": body}).first() is None:
            conn.rollback()  # a fresh snapshot for the next look
            if time.monotonic() > end:
                raise AssertionError(f"{body!r} was never stored")
    os.kill(pid, signal.SIGKILL)


def _worker_holding(port: int, root_pid: int) -> psutil.Process:
    """The process of backend ``root_pid``'s tree that holds its tabs' sockets: the one
    with established connections on ``port`` (Granian's worker, not its supervisor)."""
    root = psutil.Process(root_pid)
    for proc in [root, *root.children(recursive=True)]:
        conns = proc.net_connections(kind="tcp")
        if any(c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port for c in conns):
            return proc
    raise AssertionError(f"no process of backend {root_pid} holds a connection on {port}")


@dataclass
class Outcome:
    tabs: list[ClusterTab]
    victim_port: int
    victim_pid: int
    victim_tabs: list[str]
    first_message_seen: bool
    offered: int
    stored: dict[str, set[str]]
    sent_by_victim_tabs: int
    last_body: str
    partner_had_it_at_kill: bool
    friend_saw_gone_offline: bool


async def _scenario(cluster: Cluster) -> Outcome:
    names = handlers()
    run = secrets.token_hex(3)
    ports = sorted(cluster.backends)
    async with httpx.AsyncClient(base_url=cluster.url, timeout=60) as api:
        gate = asyncio.Semaphore(4)
        made = await asyncio.gather(
            *(_pair(api, gate, f"cl{run}a{i}", f"cl{run}b{i}") for i in range(PAIRS))
        )
    tabs: list[ClusterTab] = []
    for i, (a, b) in enumerate(made):
        for j, tab in enumerate((a, b)):
            tabs.append(
                ClusterTab(
                    tab.username,
                    tab.friend,
                    tab.session_token,
                    f"c{run}p{i}",
                    tab.client_token,
                    lb_url=cluster.url,
                )
            )
            # Pair i: its first tab on backend i, its second on the next one.
            tabs[-1].backend = f"http://127.0.0.1:{ports[(i + j) % BACKENDS]}"
    await asyncio.gather(*(tab.connect(tab.backend) for tab in tabs))
    for tab in tabs:
        await tab.emit(names.open_conversation, {"username": tab.friend})
    await _until(
        lambda: all(t.hydrated.is_set() and t.active == t.friend for t in tabs),
        "every tab loaded with its conversation open",
    )
    per_backend = Counter(tab.backend for tab in tabs)
    assert sorted(per_backend.values()) == [4] * BACKENDS, per_backend

    def send(n: int, pairs: Sequence[int] = range(PAIRS)) -> tuple[ClusterTab, str]:
        """Round-robin over ``pairs``, each pair's direction alternating per round."""
        pair = pairs[n % len(pairs)]
        sender = tabs[2 * pair + (n // len(pairs)) % 2]
        return sender, f"c{run}p{pair}n{n}"

    # (a) A message from a tab on one backend reaches its friend's tab on another.
    first, first_body = send(0)
    partner = tabs[tabs.index(first) + 1]
    assert first.backend != partner.backend
    await first.emit(names.send_message, {"form": {"body": first_body, "attachment_ids": ""}})
    await _until(lambda: first_body in partner.shown, "the first message at the friend's tab")
    first_message_seen = first_body in partner.shown

    # (b) A steady send load, and the backend holding tabs killed in the middle of it: the
    # moment the database holds a message that a tab on it (pair 0's first) just sent to a
    # friend on another backend, before the dying worker's fan-out can have pushed it there.
    # Pair 0 then sends nothing more: only recovery can still bring that message to the
    # friend's tab, never a later message's push.
    victim_port = ports[0]
    victim = _worker_holding(victim_port, cluster.backends[victim_port])
    victim_tabs = [t for t in tabs if t.backend.endswith(f":{victim_port}")]
    # Pair 3's first tab is closed as its worker dies (its socket record stays behind in
    # Redis); its friend on another backend must see it go offline all the same.
    gone, gone_friend = tabs[6], tabs[7]
    assert gone in victim_tabs and gone_friend not in victim_tabs
    gone.stays_away = True
    await _until(lambda: gone_friend.presence == "online", "pair 3's friend seen online")
    sent_by_victim_tabs = 0
    begin = time.monotonic()
    for n in range(1, 1 + SENDS_BEFORE_KILL):
        await asyncio.sleep(max(0.0, begin + n / SEND_RATE - time.monotonic()))
        sender, body = send(n)
        sent_by_victim_tabs += sender in victim_tabs
        await sender.emit(names.send_message, {"form": {"body": body, "attachment_ids": ""}})
    kill_n = SENDS_BEFORE_KILL + 1
    last_sender, last_body = tabs[0], f"c{run}p0n{kill_n}"
    last_partner = tabs[1]
    assert last_sender in victim_tabs and last_partner not in victim_tabs
    await last_sender.emit(names.send_message, {"form": {"body": last_body, "attachment_ids": ""}})
    await asyncio.to_thread(_kill_once_stored, cluster.database_url, last_body, victim.pid)
    partner_had_it_at_kill = last_body in last_partner.shown
    begin = time.monotonic()
    for n in range(kill_n + 1, kill_n + 1 + SENDS_AFTER_KILL):
        await asyncio.sleep(max(0.0, begin + (n - kill_n) / SEND_RATE - time.monotonic()))
        sender, body = send(n, AFTER_KILL_PAIRS)
        sent_by_victim_tabs += sender in victim_tabs
        await sender.emit(names.send_message, {"form": {"body": body, "attachment_ids": ""}})
    offered = 1 + SENDS_BEFORE_KILL + 1 + SENDS_AFTER_KILL
    await _until(
        lambda: gone_friend.presence not in ("", "online"),
        "the friend of the tab that died with its worker to see it offline",
    )
    friend_saw_gone_offline = gone_friend.presence not in ("", "online")

    # Every tab back, rehydrated with its conversation open, through the balancer.
    await _until(lambda: not psutil.pid_exists(victim.pid), "the killed worker to be gone")
    try:
        await _until(
            lambda: all(
                t.connected and not t.queued and t.active == t.friend
                for t in tabs
                if not t.stays_away
            ),
            "every tab connected again with its conversation open",
        )
    except AssertionError:
        pass  # the asserts below say which tab is not back as it was

    # Every stored message in both tabs of its pair: poll the database and the tabs.
    stored: dict[str, set[str]] = {}

    async def all_shown() -> bool:
        nonlocal stored
        stored = await asyncio.to_thread(_stored, cluster.database_url, run)
        return all(set(t.shown) == stored.get(t.pair, set()) for t in tabs)

    try:
        await _until(all_shown, "every stored message in both tabs of its pair")
    except AssertionError:
        pass  # the asserts below say what is missing or extra
    for tab in tabs:
        tab.connected_at_end = tab.connected
        tab.closing = True
    await asyncio.gather(*(t.close() for t in tabs), return_exceptions=True)
    return Outcome(
        tabs,
        victim_port,
        victim.pid,
        [t.username for t in victim_tabs],
        first_message_seen,
        offered,
        stored,
        sent_by_victim_tabs,
        last_body,
        partner_had_it_at_kill,
        friend_saw_gone_offline,
    )


def test_tabs_survive_a_killed_backend_and_every_stored_message_shows_once(cluster: Cluster):
    # Playwright's sync API may hold this thread's event loop: run the tabs in another thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        outcome = pool.submit(asyncio.run, _scenario(cluster)).result()
    tabs = outcome.tabs
    stored_total = sum(len(bodies) for bodies in outcome.stored.values())
    print(
        f"\ncluster: {outcome.offered} sends offered, {stored_total} stored; killed worker "
        f"pid {outcome.victim_pid} of backend :{outcome.victim_port} holding "
        f"{len(outcome.victim_tabs)} tabs ({outcome.sent_by_victim_tabs} sends from them); "
        f"reconnects {sum(t.reconnects for t in tabs)}, new tokens "
        f"{sum(t.new_tokens for t in tabs)}; the message stored as the worker was killed "
        f"was {'already' if outcome.partner_had_it_at_kill else 'not yet'} at the friend's tab; "
        f"the friend of the tab closed with its worker saw it offline: "
        f"{outcome.friend_saw_gone_offline}"
    )

    assert outcome.first_message_seen
    assert len(outcome.victim_tabs) == 4
    # The load went on across the kill (the database holds most of what was offered).
    assert stored_total > SENDS_BEFORE_KILL
    assert outcome.last_body in outcome.stored.get(_pair_of(outcome.last_body), set())
    assert outcome.friend_saw_gone_offline
    problems = []
    # The killed worker's tabs came back through the balancer, keeping their token (and so
    # their state: the conversation they had open); nobody else had to reconnect.
    for tab in tabs:
        if tab.stays_away:
            continue
        on_victim = tab.username in outcome.victim_tabs
        if tab.reconnects != (1 if on_victim else 0):
            problems.append(f"{tab.username} reconnected {tab.reconnects} times")
        if on_victim and tab.backend != tab.lb_url:
            problems.append(f"{tab.username} is not back through the balancer")
        if not tab.connected_at_end:
            problems.append(f"{tab.username} is not connected; tries failed: {tab.errors[-3:]}")
        if tab.queued:
            problems.append(f"{tab.username} still has {len(tab.queued)} events to send")
        if tab.new_tokens:
            problems.append(f"{tab.username} was given a new token (and an empty state)")
        if tab.active != tab.friend:
            problems.append(f"{tab.username} has {tab.active!r} open, not {tab.friend!r}")
    # Exactly once, in both tabs of the pair; nothing of anyone else.
    for tab in tabs:
        if tab.leaks:
            problems.append(f"{tab.username} shows another user's data: {tab.leaks[:5]}")
        if tab.stays_away:
            continue  # closed: it shows what it had
        want = outcome.stored.get(tab.pair, set())
        counts = Counter(tab.shown)
        if missing := want - set(tab.shown):
            problems.append(f"{tab.username} misses {sorted(missing)}")
        if extra := set(tab.shown) - want:
            problems.append(f"{tab.username} shows unstored {sorted(extra)}")
        if twice := [b for b, c in counts.items() if c > 1]:
            problems.append(f"{tab.username} shows twice {twice}")
        if tab.redirects:
            problems.append(f"{tab.username} was redirected: {tab.redirects[:2]}")
        # Whatever a sender's own tab ever showed was stored (nothing shown then lost).
        if phantom := {b for b in tab.echoes if _pair_of(b) == tab.pair} - want:
            problems.append(f"{tab.username} once showed unstored {sorted(phantom)}")
    # The tabs' state lives in Redis (pickled by Reflex): no session cookie is in it.
    leaked = _redis_keys_holding({tab.session_token.encode() for tab in tabs})
    if leaked:
        problems.append(f"session cookies stored in Redis under {leaked[:5]}")
    if problems:  # what the servers said, for whoever reads the failure
        for log in sorted(cluster.run_dir.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()
            flagged = [line for line in lines if re.search(r"ERROR|WARN|gone|Traceback", line)]
            problems += [f"--- {log.name}: {len(lines)} lines", *flagged[-8:]]
    assert not problems, "\n".join(problems)
    # ./iris cluster starts the dead backend again on its port.
    wait_for(
        lambda: answers(f"http://127.0.0.1:{outcome.victim_port}/ping"),
        deadline=DEADLINE,
        what="the killed backend started again",
    )


@dataclass
class ExpiryOutcome:
    body: str
    plaintext_while_shown: list[str]  # Redis keys holding the body as plain bytes
    sealed_while_shown: dict[str, list[str] | None]  # each tab's bodies, unsealed
    hydrate_while_shown: bool  # the body was in the reader's hydrate
    sealed_after: dict[str, list[str] | None]
    hydrate_after: bool


async def _expiry_scenario(cluster: Cluster) -> ExpiryOutcome:
    """Two tabs on the balancer; one sends a 20-second message. While it is on screen, and
    once both tabs dropped it (the sweep's re-read reached them through Redis), look at what
    Redis holds of each tab, sealed and in plain bytes, and at what a reloaded tab is sent."""
    names = handlers()
    run = secrets.token_hex(3)
    async with httpx.AsyncClient(base_url=cluster.url, timeout=60) as api:
        made = await _pair(api, asyncio.Semaphore(1), f"cx{run}a", f"cx{run}b")
    pair = f"c{run}p0"
    sender, reader = (
        ClusterTab(t.username, t.friend, t.session_token, pair, t.client_token, lb_url=cluster.url)
        for t in made
    )
    tabs = {"sender": sender, "reader": reader}
    try:
        for tab in (sender, reader):
            await tab.connect(cluster.url)
            await asyncio.wait_for(tab.hydrated.wait(), DEADLINE)
            await tab.emit(names.open_conversation, {"username": tab.friend})
            await _until(lambda tab=tab: tab.active == tab.friend, "the conversation open")
        composer = names.send_message.rsplit(".", 1)[0]
        await sender.emit(f"{composer}.set_timer_choice", {"choice": "custom"})
        await sender.emit(f"{composer}.set_custom_timer", {"text": "20s"})
        body = f"{pair}n0-{secrets.token_hex(8)}"
        await sender.emit(names.send_message, {"form": {"body": body, "attachment_ids": ""}})
        await _until(lambda: body in reader.shown, "the timed message at the friend's tab")
        # A tab's states stay in its worker's memory for a hold (a minute, longer than this
        # message lives); opening the conversation again has each tab's copy written at once.
        for tab in (sender, reader):
            await tab.emit(names.open_conversation, {"username": tab.friend})
        # On screen: in both tabs' state in Redis (a re-read there gives it back), sealed.
        await _until(
            lambda: all(
                body in (_bodies_sealed_in_redis(cluster, t.client_token) or [])
                for t in tabs.values()
            ),
            "the message in both tabs' stored state",
        )
        sealed_while_shown = {
            n: _bodies_sealed_in_redis(cluster, t.client_token) for n, t in tabs.items()
        }
        plaintext_while_shown = _redis_keys_holding({body.encode()})
        hydrate_while_shown = any(body in update for update in await _rehydrate(reader))
        await _until(
            lambda: body not in reader.shown and body not in sender.shown,
            "the expired message gone from both tabs",
        )
        assert not reader.leaks and not sender.leaks
        # Reflex stores a state after the event that changed it has sent its delta: wait
        # until each tab's stored state is the page it shows now.
        await _until(
            lambda: all(
                _bodies_sealed_in_redis(cluster, t.client_token) == t.shown * 2
                for t in tabs.values()
            ),
            "both tabs' stored state to be the page they show",
        )
        sealed_after = {
            n: _bodies_sealed_in_redis(cluster, t.client_token) for n, t in tabs.items()
        }
        hydrate_after = any(body in update for update in await _rehydrate(reader))
        return ExpiryOutcome(
            body,
            plaintext_while_shown,
            sealed_while_shown,
            hydrate_while_shown,
            sealed_after,
            hydrate_after,
        )
    finally:
        await sender.close()
        await reader.close()


def test_a_message_is_never_plaintext_in_redis_and_leaves_no_copy_once_expired(cluster: Cluster):
    """With several workers every tab's state is pickled into Redis. While a message is on
    screen it is there, in both tabs' state, only sealed: no key holds its text; once it
    expired and the tabs dropped it, neither tab's state holds it even sealed, and a tab
    that reloads is not sent it."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        outcome = pool.submit(asyncio.run, _expiry_scenario(cluster)).result()
    body = outcome.body
    assert all(body in (bodies or []) for bodies in outcome.sealed_while_shown.values())
    assert outcome.plaintext_while_shown == []
    assert outcome.hydrate_while_shown  # a reloaded tab is sent what is stored for it
    for name, bodies in outcome.sealed_after.items():
        assert bodies is not None, f"the {name}'s state left Redis: nothing was checked"
        assert body not in bodies, f"the {name}'s stored state still holds the message"
    assert not outcome.hydrate_after
    assert _redis_keys_holding({body.encode()}) == []
