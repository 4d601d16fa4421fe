"""Changes relayed to the worker holding a tab's socket, on a real Redis.

A change (a new message included) reaches the worker it was sent to as it was sent; one
sent to a worker nobody listens for says so (the sender then applies it itself); what this
deployment did not seal (a bare pickle, another deployment's seal, a blob sealed for another
purpose) is refused before anything is unpickled, and the listener goes on; a subscription
that broke is made again and the worker re-reads its tabs, since changes sent meanwhile are
gone.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest

from iris_reflex import metrics, sealing
from iris_reflex.live.events import Change, TabChange
from iris_reflex.live.relay import LABEL, Relay, framed
from iris_reflex.services.attachments import AttachmentView
from iris_reflex.services.message_views import MessageView
from tests.redis_server import REDIS_URL, require_redis

DEADLINE = 10.0


@pytest.fixture
def prefix() -> str:
    require_redis()
    return f"iris-test-{secrets.token_hex(4)}:"


def _message() -> MessageView:
    return MessageView(
        id=41,
        conversation_id=7,
        sender_id=1,
        recipient_id=2,
        kind="text",
        body="meet at the station, 7 pm",
        created_at=datetime(2026, 11, 30, 21, 0, tzinfo=UTC),
        expires_at=None,
        timer_seconds=None,
        timer_mode=None,
        read_at=None,
        attachments=(
            AttachmentView(
                id=3,
                message_id=41,
                name="map.png",
                mime_type="image/png",
                kind="image",
                size_bytes=1234,
                width=40,
                height=30,
                has_thumbnail=True,
            ),
        ),
    )


class Listening:
    """A worker's receiving side: its relay listening under ``name``, what it applied, and
    how often it re-read its tabs after a gap."""

    def __init__(self, prefix: str, name: str) -> None:
        self.relay = Relay(REDIS_URL, prefix, name=f"{prefix}{name}")
        self.client_name = f"{prefix}{name}"
        self.name = name
        self.applied: asyncio.Queue[tuple[int, str, Change]] = asyncio.Queue()
        self.gaps = 0
        self.regained = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _apply(self, user_id: int, token: str, change: Change) -> None:
        await self.applied.put((user_id, token, change))

    async def _gap(self) -> None:
        self.gaps += 1
        self.regained.set()

    async def start(self, sender: Relay) -> None:
        self.task = asyncio.create_task(
            self.relay.listen(lambda: self.name, self._apply, self._gap)
        )
        # Subscribed once a publish to this worker is heard.
        async with asyncio.timeout(DEADLINE):
            while not await sender._redis.pubsub_numsub(sender.channel(self.name)) == [
                (sender.channel(self.name).encode(), 1)
            ]:
                await asyncio.sleep(0.02)

    async def next_applied(self) -> tuple[int, str, Change]:
        return await asyncio.wait_for(self.applied.get(), DEADLINE)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await self.task
        await self.relay.close()


def test_a_change_reaches_the_worker_it_is_sent_to_as_it_was_sent(prefix: str):
    async def scenario() -> None:
        sender = Relay(REDIS_URL, prefix)
        holder = Listening(prefix, "worker-b")
        await holder.start(sender)
        try:
            arrived = Change(TabChange.MESSAGE_ARRIVED, message=_message())
            receipts = Change(TabChange.RECEIPTS, message_ids=(40, 41))
            assert await sender.send("worker-b", 2, "tab-1", arrived)
            assert await sender.send("worker-b", 1, "tab-2", receipts)
            assert await holder.next_applied() == (2, "tab-1", arrived)
            assert await holder.next_applied() == (1, "tab-2", receipts)
            # Nobody listens for a worker that died (or never was): the sender is told, and
            # applies the change itself.
            assert not await sender.send("worker-gone", 2, "tab-1", arrived)
        finally:
            await holder.stop()
            await sender.close()

    asyncio.run(scenario())


def test_what_this_deployment_did_not_seal_is_refused_and_the_listener_goes_on(prefix: str):
    async def scenario() -> None:
        sender = Relay(REDIS_URL, prefix)
        holder = Listening(prefix, "worker-b")
        await holder.start(sender)
        refused_before = metrics.RELAY_REFUSED._value.get()
        try:
            channel = sender.channel("worker-b")
            forged = {"user_id": 2, "change": Change(TabChange.RESYNC)}
            other_deployment = sealing.cipher_for("another deployment's secret " * 2)
            nonce = os.urandom(sealing.NONCE_BYTES)
            blobs: list[Any] = [
                framed("tab-1", pickle.dumps(forged)),  # a bare pickle: never unpickled
                framed(
                    "tab-1",
                    sealing.VERSION
                    + nonce
                    + other_deployment.encrypt(nonce, pickle.dumps(forged), LABEL.encode()),
                ),
                framed("tab-1", sealing.seal(forged, label="iris tab state")),  # another purpose
                framed("tab-1", sealing.seal({"user_id": "2", "change": "resync"}, label=LABEL)),
                # A genuine change without its tab, or with a length that is not one.
                sealing.seal(forged, label=LABEL),
                b"99999:tab-1" + sealing.seal(forged, label=LABEL),
                b"1:\xff" + sealing.seal(forged, label=LABEL),  # a token that is not text
            ]
            for blob in blobs:
                await sender._redis.publish(channel, blob)
            genuine = Change(TabChange.TYPING, username="ada")
            assert await sender.send("worker-b", 2, "tab-1", genuine)
            # Pub/sub keeps order: once the genuine one is applied, the others were handled.
            assert await holder.next_applied() == (2, "tab-1", genuine)
            assert holder.applied.empty()
            assert metrics.RELAY_REFUSED._value.get() - refused_before == len(blobs)
        finally:
            await holder.stop()
            await sender.close()

    asyncio.run(scenario())


def test_a_broken_subscription_is_made_again_and_the_tabs_re_read(prefix: str):
    async def scenario() -> None:
        sender = Relay(REDIS_URL, prefix)
        holder = Listening(prefix, "worker-b")
        await holder.start(sender)
        try:
            # Redis drops the listener's connection, as a Redis restart or a network cut
            # would (found by the name its client gives itself).
            clients = await sender._redis.client_list()
            ids = [c["id"] for c in clients if c.get("name") == holder.client_name]
            assert ids, "the listener's connection was not found"
            for client_id in ids:
                await sender._redis.client_kill_filter(_id=client_id)
            await asyncio.wait_for(holder.regained.wait(), DEADLINE)
            assert holder.gaps == 1
            change = Change(TabChange.PRESENCE)
            assert await sender.send("worker-b", 5, "tab-9", change)
            assert await holder.next_applied() == (5, "tab-9", change)
        finally:
            await holder.stop()
            await sender.close()

    asyncio.run(scenario())


class ElsewhereTabs:
    """Tabs connected to another worker, ``worker-b`` (Reflex's socket records say so);
    records what is applied here, through Redis, the slow way."""

    def __init__(self) -> None:
        self.applied: list[tuple[str, Change]] = []

    async def is_connected(self, token: str) -> bool:
        return True

    def is_local(self, token: str) -> bool:
        return False

    async def owner(self, token: str) -> str | None:
        return "worker-b"

    def flush(self, token: str) -> None:
        pass

    async def apply(self, token: str, user_id: int, change: Change) -> bool:
        self.applied.append((token, change))
        return True


def test_a_push_goes_to_the_worker_holding_the_tab_and_is_applied_here_when_none_hears(
    prefix: str, monkeypatch: pytest.MonkeyPatch
):
    from iris_reflex.live import push
    from iris_reflex.live.registry import get_registry

    async def scenario() -> None:
        sender = Relay(REDIS_URL, prefix)
        monkeypatch.setattr(push, "get_relay", lambda: sender)
        here = ElsewhereTabs()
        push.install(here)  # type: ignore[arg-type]
        get_registry.cache_clear()
        holder = Listening(prefix, "worker-b")
        await holder.start(sender)
        try:
            await get_registry().add(2, "tab-1")
            arrived = Change(TabChange.MESSAGE_ARRIVED, message=_message())
            assert await push.push_to_user(2, arrived) == 1
            assert await holder.next_applied() == (2, "tab-1", arrived)
            assert here.applied == []

            # What worker-b is handed it applies itself, even if the tab has moved on: it
            # is never relayed a second time (two workers could bounce it for ever).
            await push.apply_relayed(2, "tab-1", arrived)
            assert here.applied == [("tab-1", arrived)]
            marker = Change(TabChange.PRESENCE)
            assert await sender.send("worker-b", 2, "tab-1", marker)
            assert await holder.next_applied() == (2, "tab-1", marker)  # nothing before it

            # worker-b is gone: nobody hears, so the change is applied here.
            await holder.stop()
            typing = Change(TabChange.TYPING, username="ada")
            assert await push.push_to_user(2, typing) == 1
            assert here.applied == [("tab-1", arrived), ("tab-1", typing)]
        finally:
            push.install(None)
            get_registry.cache_clear()
            if holder.task is not None and not holder.task.done():
                await holder.stop()
            await sender.close()

    asyncio.run(scenario())


class SplitTabs:
    """This worker, ``worker-a``: tabs ``here`` are connected to it; every other tab is
    connected nowhere (its worker died). Records what is applied here."""

    def __init__(self, here: set[str]) -> None:
        self.here = here
        self.applied: list[tuple[str, Change]] = []

    def worker_id(self) -> str | None:
        return "worker-a"

    async def is_connected(self, token: str) -> bool:
        return token in self.here

    def is_local(self, token: str) -> bool:
        return token in self.here

    async def owner(self, token: str) -> str | None:
        return "worker-a" if token in self.here else None

    def flush(self, token: str) -> None:
        pass

    async def apply(self, token: str, user_id: int, change: Change) -> bool:
        self.applied.append((token, change))
        return True


def test_a_fan_out_hands_changes_to_other_workers_in_the_call_that_looks_the_tabs_up(
    prefix: str, monkeypatch: pytest.MonkeyPatch
):
    """A message's fan-out and its receipt each make one call to Redis: the tabs
    registered on another worker get their change there, the rest are pushed from here
    (registered here, on no worker yet, or on a worker nobody hears), and the tab that
    acted gets nothing."""
    from iris_reflex.live import fanout, push
    from iris_reflex.live.events import MessageSent, MessagesRead
    from iris_reflex.live.registry import RedisRegistry

    ada, bob = 1, 2

    async def scenario() -> None:
        sender = Relay(REDIS_URL, prefix)
        registry = RedisRegistry(REDIS_URL, prefix=f"{prefix}tab-workers:")
        monkeypatch.setattr(push, "get_relay", lambda: sender)
        monkeypatch.setattr(push, "get_registry", lambda: registry)
        calls: list[str] = []
        send_to_users, tokens_of = sender.send_to_users, registry.tokens_of

        async def counted_send_to_users(*args: Any, **kwargs: Any) -> Any:
            calls.append("send_to_users")
            return await send_to_users(*args, **kwargs)

        async def counted_tokens_of(user_ids: Any) -> Any:
            calls.append("tokens_of")
            return await tokens_of(user_ids)

        monkeypatch.setattr(sender, "send_to_users", counted_send_to_users)
        monkeypatch.setattr(registry, "tokens_of", counted_tokens_of)
        here = SplitTabs({"ada-laptop", "ada-phone", "bob-new"})
        push.install(here)  # type: ignore[arg-type]
        holder = Listening(prefix, "worker-b")
        await holder.start(sender)
        try:
            for user_id, token, worker in (
                (ada, "ada-laptop", "worker-a"),  # the tab that sent
                (ada, "ada-phone", "worker-a"),
                (ada, "ada-desk", "worker-b"),
                (ada, "ada-old", "worker-gone"),
                (bob, "bob-tab", "worker-b"),
                (bob, "bob-new", None),  # registered before its worker knew its name
            ):
                await registry.add(user_id, token, worker)
            view = _message()
            arrived = Change(TabChange.MESSAGE_ARRIVED, message=view)
            await fanout.deliver(MessageSent(view), skip_token="ada-laptop")
            assert calls == ["send_to_users"]
            relayed = {await holder.next_applied(), await holder.next_applied()}
            assert relayed == {(bob, "bob-tab", arrived), (ada, "ada-desk", arrived)}
            assert sorted(here.applied) == sorted([("ada-phone", arrived), ("bob-new", arrived)])
            # Nobody heard worker-gone: its tab is not connected, so it left the registry.
            assert await registry.tokens(ada) == {"ada-laptop", "ada-phone", "ada-desk"}

            here.applied.clear()
            read = MessagesRead(
                reader_id=bob, sender_id=ada, sender_may_see=True, message_ids=(41,)
            )
            await fanout.deliver(read, skip_token="bob-tab")
            assert calls == ["send_to_users", "send_to_users"]
            receipts = Change(TabChange.RECEIPTS, message_ids=(41,))
            assert await holder.next_applied() == (ada, "ada-desk", receipts)
            assert sorted(here.applied) == sorted(
                [
                    ("ada-laptop", receipts),
                    ("ada-phone", receipts),
                    ("bob-new", Change(TabChange.CONVERSATIONS)),
                ]
            )
            assert holder.applied.empty()
        finally:
            push.install(None)
            await holder.stop()
            await sender.close()
            await registry.close()

    asyncio.run(scenario())


def test_fan_outs_under_way_together_share_a_call_and_each_gets_its_own_answer(prefix: str):
    """Fan-outs that wait while a call is under way go to Redis in one call of the script,
    each with its own skipped tab and change, and each gets back its own tabs; a failing
    call fails every fan-out it carried, and the next ones go on."""
    from iris_reflex.live.registry import RedisRegistry

    fan_outs = 40

    async def scenario() -> None:
        sender = Relay(REDIS_URL, prefix)
        registry = RedisRegistry(REDIS_URL, prefix=f"{prefix}tab-workers:")
        holder = Listening(prefix, "worker-b")
        script = sender._send_to_users
        users_per_call: list[int] = []

        async def counted(*, keys: list[str], args: list[Any]) -> Any:
            users_per_call.append(len(keys))
            return await script(keys=keys, args=args)

        sender._send_to_users = counted  # type: ignore[assignment]
        await holder.start(sender)
        try:
            for user_id in range(1, fan_outs + 1):
                await registry.add(user_id, f"acted-{user_id}", "worker-a")
                await registry.add(user_id, f"there-{user_id}", "worker-b")
                await registry.add(user_id, f"here-{user_id}", "worker-a")
            changes = [
                Change(TabChange.TYPING, username=f"user-{user_id}")
                for user_id in range(1, fan_outs + 1)
            ]
            answers = await asyncio.gather(
                *(
                    sender.send_to_users(
                        [registry.key(user_id)],
                        [(user_id, change)],
                        here="worker-a",
                        skip_token=f"acted-{user_id}",
                    )
                    for user_id, change in enumerate(changes, start=1)
                )
            )
            assert answers == [[(1, [f"here-{u}"])] for u in range(1, fan_outs + 1)]
            assert sum(users_per_call) == fan_outs
            assert len(users_per_call) < fan_outs  # the first alone, the rest together
            relayed = {await holder.next_applied() for _ in range(fan_outs)}
            assert relayed == {
                (u, f"there-{u}", change) for u, change in enumerate(changes, start=1)
            }
            assert holder.applied.empty()

            async def broken(*, keys: list[str], args: list[Any]) -> Any:
                raise ConnectionError("Redis went away")

            sender._send_to_users = broken  # type: ignore[assignment]
            failed = await asyncio.gather(
                *(
                    sender.send_to_users(
                        [registry.key(1)], [(1, changes[0])], here="worker-a", skip_token=None
                    )
                    for _ in range(3)
                ),
                return_exceptions=True,
            )
            assert all(isinstance(f, ConnectionError) for f in failed)
            sender._send_to_users = counted  # type: ignore[assignment]
            again = await sender.send_to_users(
                [registry.key(2)], [(2, changes[1])], here="worker-a", skip_token="acted-2"
            )
            assert again == [(1, ["here-2"])]
        finally:
            await holder.stop()
            await sender.close()
            await registry.close()

    asyncio.run(scenario())
