"""Pushes to a user's tabs: re-read changes that pile up while one is being applied fold into
one follow-up (never dropped), and other kinds are never folded. ``HeldTabs`` plays Reflex's
side (which tokens are connected) and holds the first apply until the test lets it go, so the
pile-up is made, not raced for."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from iris_reflex import clock
from iris_reflex.live import fanout, push
from iris_reflex.live.events import Change, MessageSent, MessagesRead, TabChange
from iris_reflex.live.registry import get_registry
from iris_reflex.services.message_views import MessageView


class HeldTabs:
    """Connected tabs whose first ``apply`` waits for ``release``; records what is applied."""

    def __init__(self) -> None:
        self.applied: list[tuple[str, Change]] = []
        self.release = asyncio.Event()
        self.first_started = asyncio.Event()

    async def is_connected(self, token: str) -> bool:
        return True

    def is_local(self, token: str) -> bool:
        return True

    async def owner(self, token: str) -> str | None:
        return "this-worker"

    def worker_id(self) -> str | None:
        return None  # one worker: no relay

    def flush(self, token: str) -> None:
        pass

    async def apply(self, token: str, user_id: int, change: Change) -> bool:
        if not self.first_started.is_set():
            self.first_started.set()
            await self.release.wait()
        self.applied.append((token, change))
        return True

    async def sign_out(self, token: str, user_id: int) -> bool:
        return True


@pytest.fixture
def tabs() -> Iterator[HeldTabs]:
    get_registry.cache_clear()
    driver = HeldTabs()
    push.install(driver)
    yield driver
    push.install(None)
    get_registry.cache_clear()


def test_receipts_piling_up_behind_a_slow_push_arrive_as_one_follow_up(tabs):
    async def scenario() -> list[int]:
        await get_registry().add(7, "tab-a")
        first = asyncio.create_task(
            push.push_to_user(7, Change(TabChange.RECEIPTS, message_ids=(1,)))
        )
        await tabs.first_started.wait()
        folded = [
            await push.push_to_user(7, Change(TabChange.RECEIPTS, message_ids=ids))
            for ids in ((3,), (2, 3))
        ]
        tabs.release.set()
        return [*folded, await first]

    assert asyncio.run(scenario()) == [0, 0, 2]  # the first push reached the tab twice
    assert tabs.applied == [
        ("tab-a", Change(TabChange.RECEIPTS, message_ids=(1,))),
        ("tab-a", Change(TabChange.RECEIPTS, message_ids=(2, 3))),
    ]


def test_new_messages_are_never_folded(tabs):
    async def scenario() -> None:
        await get_registry().add(7, "tab-a")
        first = asyncio.create_task(
            push.push_to_user(7, Change(TabChange.MESSAGE_ARRIVED, message_ids=(1,)))
        )
        await tabs.first_started.wait()
        second = push.push_to_user(7, Change(TabChange.MESSAGE_ARRIVED, message_ids=(2,)))
        assert await second == 1  # applied at once, not folded behind the first
        tabs.release.set()
        assert await first == 1

    asyncio.run(scenario())
    assert [change.message_ids for _, change in tabs.applied] == [(2,), (1,)]


def test_once_a_push_is_done_the_next_one_is_not_folded(tabs):
    async def scenario() -> int:
        await get_registry().add(7, "tab-a")
        tabs.release.set()
        await push.push_to_user(7, Change(TabChange.CONVERSATIONS))
        return await push.push_to_user(7, Change(TabChange.CONVERSATIONS))

    assert asyncio.run(scenario()) == 1
    assert push._following == {}


def test_a_message_and_its_receipt_each_look_up_the_registry_once(tabs, monkeypatch):
    """With several workers each lookup is a Redis round trip: a message's fan-out needs the
    recipient's tabs and the sender's other tabs, its receipt the reader's other tabs and
    the sender's, and each pair comes in one trip."""
    registry = get_registry()
    trips: list[tuple[int, ...]] = []
    tokens_of, tokens = registry.tokens_of, registry.tokens

    async def counted_tokens_of(user_ids):  # type: ignore[no-untyped-def]
        trips.append(tuple(user_ids))
        return await tokens_of(user_ids)

    async def counted_tokens(user_id):  # type: ignore[no-untyped-def]
        trips.append((user_id,))
        return await tokens(user_id)

    monkeypatch.setattr(registry, "tokens_of", counted_tokens_of)
    monkeypatch.setattr(registry, "tokens", counted_tokens)
    tabs.release.set()
    ada, bob = 7, 8
    view = MessageView(
        id=1,
        conversation_id=1,
        sender_id=ada,
        recipient_id=bob,
        kind="text",
        body="hi",
        created_at=clock.now(),
        expires_at=None,
        timer_seconds=None,
        timer_mode=None,
        read_at=None,
    )

    async def scenario() -> None:
        for user_id, token in ((ada, "ada-phone"), (ada, "ada-laptop"), (bob, "bob-tab")):
            await registry.add(user_id, token)
        await fanout.deliver(MessageSent(view), skip_token="ada-laptop")
        read = MessagesRead(reader_id=bob, sender_id=ada, sender_may_see=True, message_ids=(1,))
        await fanout.deliver(read, skip_token="bob-tab")

    asyncio.run(scenario())
    assert trips == [(bob, ada), (bob, ada)]
    assert sorted((token, change.kind) for token, change in tabs.applied) == [
        ("ada-laptop", TabChange.RECEIPTS),
        ("ada-phone", TabChange.MESSAGE_ARRIVED),
        ("ada-phone", TabChange.RECEIPTS),
        ("bob-tab", TabChange.MESSAGE_ARRIVED),
    ]


def test_after_a_worker_dies_every_local_tab_is_re_read_a_few_at_a_time(tabs, monkeypatch):
    """A survivor re-reads each tab connected to it, but ``RESYNC_AT_ONCE`` at a time: all
    at once, their statements queued ahead of every live message's on the database threads.
    The registry is read in one trip."""
    registry = get_registry()
    trips: list[int] = []
    tokens_of = registry.tokens_of

    async def counted_tokens_of(user_ids):  # type: ignore[no-untyped-def]
        trips.append(len(user_ids))
        return await tokens_of(user_ids)

    monkeypatch.setattr(registry, "tokens_of", counted_tokens_of)
    tabs.release.set()
    in_flight, most = 0, 0
    apply = tabs.apply

    async def overlapping_apply(token: str, user_id: int, change: Change) -> bool:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        for _ in range(5):  # let every re-read that may start, start
            await asyncio.sleep(0)
        in_flight -= 1
        return await apply(token, user_id, change)

    monkeypatch.setattr(tabs, "apply", overlapping_apply)

    async def scenario() -> int:
        for user_id in range(1, 6):
            for device in ("phone", "laptop"):
                await registry.add(user_id, f"{user_id}-{device}")
        return await push.resync_local_tabs()

    assert asyncio.run(scenario()) == 10
    assert most == push.RESYNC_AT_ONCE < 10
    assert trips == [5]
    assert sorted(token for token, _ in tabs.applied) == sorted(
        f"{u}-{d}" for u in range(1, 6) for d in ("phone", "laptop")
    )
    assert {change.kind for _, change in tabs.applied} == {TabChange.RESYNC}
