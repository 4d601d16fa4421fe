"""Presence without polling: a closed websocket makes its user offline only when it was the
last of their tabs, and the slow sweep catches tabs whose close nobody reported (a worker
killed with them). Runs against a real database (last seen is stored) and the in-memory
registry; ``Sockets`` plays Reflex's token manager (which tokens have a live websocket)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlmodel import Session

from iris_reflex.live import outbox, presence, push
from iris_reflex.live.events import Change, PresenceChanged
from iris_reflex.live.registry import get_registry
from iris_reflex.models import User
from iris_reflex.services import users
from iris_reflex.settings import get_settings


class Sockets:
    """The tab driver as far as presence uses it: which tokens are connected."""

    def __init__(self) -> None:
        self.open: set[str] = set()

    async def is_connected(self, token: str) -> bool:
        return token in self.open

    async def apply(self, token: str, user_id: int, change: Change) -> bool:
        return True

    async def sign_out(self, token: str, user_id: int) -> bool:
        return True


@pytest.fixture
def sockets(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sockets]:
    monkeypatch.setattr(get_settings(), "database_url", database_url)
    get_registry.cache_clear()
    driver = Sockets()
    push.install(driver)
    yield driver
    push.install(None)
    get_registry.cache_clear()
    presence._here.clear()
    presence._online.clear()


def _person(session: Session, name: str) -> int:
    user = users.check_register(
        session, username=name, password="correct horse battery", ip="198.51.100.1"
    )
    assert user.id is not None
    return user.id


def _open(sockets: Sockets, user_id: int, token: str) -> None:
    """A tab connects and loads (what ``SidebarState.load`` does)."""
    sockets.open.add(token)
    asyncio.run(get_registry().add(user_id, token))
    presence.tab_opened(user_id, token)


def _last_seen(session: Session, user_id: int) -> object:
    session.rollback()
    user = session.get(User, user_id, populate_existing=True)
    assert user is not None
    return user.last_seen_at


def test_closing_one_of_two_tabs_keeps_the_user_online(session, sockets):
    ada = _person(session, "ada")
    _open(sockets, ada, "tab-1")
    _open(sockets, ada, "tab-2")

    with outbox.record() as published:
        # Reflex forgets the socket in a task of its own: the closing token may still look
        # connected when presence asks, so it must not count.
        asyncio.run(presence.tab_closed("tab-1"))
    assert published == []
    assert _last_seen(session, ada) is None

    sockets.open.discard("tab-1")
    sockets.open.discard("tab-2")
    with outbox.record() as published:
        asyncio.run(presence.tab_closed("tab-2"))
    assert published == [(PresenceChanged(ada), None)]
    assert _last_seen(session, ada) is not None


def test_a_close_on_another_worker_or_twice_announces_nothing(session, sockets):
    ada = _person(session, "ada")
    _open(sockets, ada, "tab-1")
    with outbox.record() as published:
        asyncio.run(presence.tab_closed("not-a-tab-of-this-worker"))
        sockets.open.discard("tab-1")
        asyncio.run(presence.tab_closed("tab-1"))
        asyncio.run(presence.tab_closed("tab-1"))
    assert published == [(PresenceChanged(ada), None)]


def test_the_sweep_finds_tabs_whose_close_was_never_reported(session, sockets):
    ada, bob = _person(session, "ada"), _person(session, "bob")
    _open(sockets, ada, "tab-a")
    _open(sockets, bob, "tab-b")
    sockets.open.discard("tab-b")  # its worker died: no disconnect was seen anywhere

    carol = _person(session, "carol")
    asyncio.run(get_registry().add(carol, "tab-c"))  # loaded on a worker that was killed
    with outbox.record() as published:
        asyncio.run(presence.sweep())
        asyncio.run(presence.sweep())  # once is enough
    assert {event for event, _skip in published} == {PresenceChanged(bob), PresenceChanged(carol)}
    assert len(published) == 2
    assert _last_seen(session, bob) is not None and _last_seen(session, carol) is not None
    assert _last_seen(session, ada) is None
    assert asyncio.run(get_registry().tokens(carol)) == set()
