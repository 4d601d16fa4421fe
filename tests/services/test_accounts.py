"""The account service: theme, default timer, password change, signing out, deleting.

Real argon2 hashes with cheap parameters (a password is really checked), real files in a
per-test upload folder, and both databases. Deleting an account must remove every row and
file of that user and leave everyone else's exactly as it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from passlib.context import CryptContext
from sqlmodel import Session, func, select

from iris_reflex import clock
from iris_reflex.errors import Invalid, NotAuthenticated, NotFound, Throttled
from iris_reflex.models import (
    Attachment,
    Block,
    Conversation,
    Friendship,
    LoginFailure,
    Message,
    User,
    UserSession,
)
from iris_reflex.services import (
    accounts,
    auth,
    blocks,
    expiry,
    friend_requests,
    friends,
    passwords,
    storage,
    users,
)
from iris_reflex.settings import get_settings
from tests.services.builders import PASSWORD, befriend, register, send

NEW_PASSWORD = "purple monkey dishwasher"


@pytest.fixture(autouse=True)
def fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real argon2 hashing and checking, with test-sized cost parameters."""
    cheap = CryptContext(
        schemes=["argon2"], argon2__memory_cost=1024, argon2__rounds=1, argon2__parallelism=1
    )
    monkeypatch.setattr(passwords, "_context", cheap)


@pytest.fixture
def uploads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh upload folder for this test."""
    folder = tmp_path / "uploads"
    monkeypatch.setattr(get_settings(), "upload_dir", folder)
    return folder


# --- helpers --------------------------------------------------------------------------------


SIGN_IN_IP = "198.51.100.9"


def sign_in(session: Session, username: str, password: str = PASSWORD) -> auth.SignedIn:
    return auth.login(session, username=username, password=password, ip=SIGN_IN_IP)


def stored_file(content: bytes) -> tuple[str, Path]:
    key = storage.new_key()
    return key, storage.write_bytes(key, content)


def attachment(
    session: Session, uploader_id: int, *, message_id: int | None, thumbnail: bool = True
) -> list[Path]:
    """An attachment row with its file (and a thumbnail); the paths on disk."""
    key, path = stored_file(b"photo bytes")
    paths = [path]
    thumb_key = None
    if thumbnail:
        thumb_key, thumb_path = stored_file(b"thumb bytes")
        paths.append(thumb_path)
    session.add(
        Attachment(
            message_id=message_id,
            uploader_id=uploader_id,
            storage_key=key,
            thumbnail_key=thumb_key,
            original_name="photo.png",
            mime_type="image/png",
            size_bytes=11,
            created_at=clock.now(),
        )
    )
    session.commit()
    return paths


def set_avatar(session: Session, user_id: int) -> Path:
    key, path = stored_file(b"avatar")
    user = session.get(User, user_id)
    assert user is not None
    user.avatar_key = key
    session.add(user)
    session.commit()
    return path


def count(session: Session, model: type, *conditions: object) -> int:
    session.rollback()  # count what is committed now
    return session.exec(select(func.count()).select_from(model).where(*conditions)).one()


def live_sessions(session: Session, user_id: int) -> set[str]:
    session.rollback()
    return set(
        session.exec(
            select(UserSession.id).where(
                UserSession.user_id == user_id, UserSession.revoked_at.is_(None)
            )
        ).all()
    )


def unnamed_files(session: Session) -> set[str]:
    """Stored files that no row names: what a deletion must never leave behind."""
    session.rollback()
    keys = [key for key, _ in storage.iter_stored_keys()]
    return set(keys) - expiry._referenced(session, keys)


# --- preferences ----------------------------------------------------------------------------


def test_new_account_starts_with_system_theme_receipts_and_no_default_timer(session):
    (ada,) = register(session, "ada")
    assert accounts.get_preferences(session, actor_id=ada) == accounts.Preferences(
        username="ada", theme="system", read_receipts=True, default_timer_seconds=None
    )


@pytest.mark.parametrize("theme", ["light", "dark", "system"])
def test_theme_is_remembered(session, theme):
    (ada,) = register(session, "ada")
    assert accounts.set_theme(session, actor_id=ada, theme=theme) == theme
    session.rollback()
    assert session.get(User, ada).theme == theme


@pytest.mark.parametrize("theme", ["", "Dark", "blue", "system "])
def test_unknown_theme_is_refused_and_nothing_changes(session, theme):
    (ada,) = register(session, "ada")
    accounts.set_theme(session, actor_id=ada, theme="dark")
    with pytest.raises(Invalid, match="light, dark or system"):
        accounts.set_theme(session, actor_id=ada, theme=theme)
    session.rollback()
    assert session.get(User, ada).theme == "dark"


@pytest.mark.parametrize(("seconds", "stored"), [(3600, 3600), (5, 5), (None, None), (0, None)])
def test_default_timer_is_stored_for_later_conversations(session, seconds, stored):
    (ada,) = register(session, "ada")
    accounts.set_default_timer(session, actor_id=ada, seconds=86400)
    assert accounts.set_default_timer(session, actor_id=ada, seconds=seconds) == stored
    assert accounts.get_preferences(session, actor_id=ada).default_timer_seconds == stored


@pytest.mark.parametrize("seconds", [4, -1, 365 * 24 * 3600 + 1])
def test_impossible_default_timer_is_refused_and_nothing_changes(session, seconds):
    (ada,) = register(session, "ada")
    accounts.set_default_timer(session, actor_id=ada, seconds=600)
    with pytest.raises(Invalid, match="5 seconds to 365 days"):
        accounts.set_default_timer(session, actor_id=ada, seconds=seconds)
    assert accounts.get_preferences(session, actor_id=ada).default_timer_seconds == 600


def test_preferences_of_a_missing_user_are_not_found(session):
    with pytest.raises(NotFound):
        accounts.set_theme(session, actor_id=999, theme="dark")
    with pytest.raises(NotFound):
        accounts.get_preferences(session, actor_id=999)


# --- password -------------------------------------------------------------------------------


def test_password_change_keeps_this_session_and_ends_the_others(session):
    (ada, bob) = register(session, "ada", "bob")
    here, phone, laptop = (sign_in(session, "ada") for _ in range(3))
    bobs = sign_in(session, "bob")

    ended = accounts.change_password(
        session,
        actor_id=ada,
        session_id=here.session_id,
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
    )

    assert ended == 2
    assert live_sessions(session, ada) == {here.session_id}
    assert auth.authenticate(session, here.token).user_id == ada
    for other in (phone, laptop):
        with pytest.raises(NotAuthenticated):
            auth.authenticate(session, other.token)
    assert auth.authenticate(session, bobs.token).user_id == bob
    with pytest.raises(NotAuthenticated):
        sign_in(session, "ada")
    assert sign_in(session, "ADA", NEW_PASSWORD).user.id == ada


@pytest.mark.parametrize(
    ("current", "new", "message"),
    [
        ("wrong password", NEW_PASSWORD, "That password is not correct."),
        ("x" * 200, NEW_PASSWORD, "That password is not correct."),
        ("", NEW_PASSWORD, "That password is not correct."),
        (PASSWORD, "short", "at least 8 characters"),
        (PASSWORD, "y" * 129, "at most 128 characters"),
        (PASSWORD, PASSWORD, "the same as the current one"),
    ],
)
def test_refused_password_change_changes_nothing(session, current, new, message):
    (ada,) = register(session, "ada")
    here, other = sign_in(session, "ada"), sign_in(session, "ada")
    before = session.get(User, ada).password_hash

    with pytest.raises(Invalid, match=message):
        accounts.change_password(
            session,
            actor_id=ada,
            session_id=here.session_id,
            current_password=current,
            new_password=new,
        )

    session.rollback()
    assert session.get(User, ada).password_hash == before
    assert live_sessions(session, ada) == {here.session_id, other.session_id}
    assert sign_in(session, "ada").user.id == ada


def test_wrong_passwords_in_settings_count_as_failed_logins(session, monkeypatch):
    monkeypatch.setattr(get_settings(), "login_free_attempts", 3)
    (ada,) = register(session, "ada")
    here = sign_in(session, "ada")
    for _ in range(3):
        with pytest.raises(Invalid):
            accounts.delete_account(session, actor_id=ada, password="guess", ip=SIGN_IN_IP)

    # From that address even the right password is not checked now, in the settings or at
    # the login page, until the wait is over.
    with pytest.raises(Throttled):
        accounts.change_password(
            session,
            actor_id=ada,
            session_id=here.session_id,
            current_password=PASSWORD,
            new_password=NEW_PASSWORD,
            ip=SIGN_IN_IP,
        )
    with pytest.raises(Throttled):
        sign_in(session, "ada")
    assert count(session, User) == 1
    assert count(session, LoginFailure, LoginFailure.ip == SIGN_IN_IP) == 3


def test_sign_out_everywhere_ends_every_session_including_this_one(session):
    (ada, bob) = register(session, "ada", "bob")
    tokens = [sign_in(session, "ada").token for _ in range(3)]
    bobs = sign_in(session, "bob")

    assert accounts.sign_out_everywhere(session, actor_id=ada) == 3
    assert accounts.sign_out_everywhere(session, actor_id=ada) == 0

    for token in tokens:
        with pytest.raises(NotAuthenticated):
            auth.authenticate(session, token)
    assert auth.authenticate(session, bobs.token).user_id == bob
    assert sign_in(session, "ada").user.id == ada  # the password still works


# --- deleting an account --------------------------------------------------------------------


@pytest.fixture
def world(session: Session, uploads: Path) -> dict[str, object]:
    """Ada (to be deleted) with friends, requests, blocks, messages and files; and what the
    others own, which must survive."""
    ada, bob, cat, dan, eve, fay, gus = register(
        session, "ada", "bob", "cat", "dan", "eve", "fay", "gus"
    )
    befriend(session, ada, bob, "bob")
    befriend(session, cat, ada, "ada")
    befriend(session, bob, cat, "cat")
    friend_requests.send_request(session, actor_id=ada, username="dan")  # pending, from Ada
    friend_requests.send_request(session, actor_id=gus, username="ada")  # pending, to Ada
    blocks.block(session, actor_id=eve, username="ada")
    blocks.block(session, actor_id=ada, username="fay")  # Fay is not told, nor after

    ada_files: list[Path] = []
    to_bob = send(session, ada, "bob", "from ada")
    ada_files += attachment(session, ada, message_id=to_bob.id)
    from_bob = send(session, bob, "ada", "to ada")
    ada_files += attachment(session, bob, message_id=from_bob.id)  # Bob's file, in Ada's chat
    send(session, cat, "ada", "hello ada", timer_seconds=3600)
    ada_files += attachment(session, ada, message_id=None)  # pending upload
    ada_files += attachment(session, ada, message_id=None, thumbnail=False)
    ada_files.append(set_avatar(session, ada))

    others_files: list[Path] = []
    between_others = send(session, bob, "cat", "not about ada")
    others_files += attachment(session, bob, message_id=between_others.id)
    others_files += attachment(session, cat, message_id=None)
    others_files.append(set_avatar(session, bob))

    for name in ("ada", "ada", "bob"):
        sign_in(session, name)
    session.add(LoginFailure(username_key="ada", ip="192.0.2.1", failed_at=clock.now()))
    session.add(LoginFailure(username_key="bob", ip="192.0.2.1", failed_at=clock.now()))
    session.commit()
    return {
        "ids": {"ada": ada, "bob": bob, "cat": cat, "dan": dan, "eve": eve, "fay": fay, "gus": gus},
        "ada_files": ada_files,
        "others_files": others_files,
    }


def _rows(session: Session) -> dict[str, int]:
    return {
        model.__name__: count(session, model)
        for model in (
            User,
            UserSession,
            Friendship,
            Block,
            Conversation,
            Message,
            Attachment,
            LoginFailure,
        )
    }


def test_deleting_an_account_removes_its_rows_and_files_and_nothing_else(session, world):
    ids = world["ids"]
    ada = ids["ada"]

    notify = accounts.delete_account(session, actor_id=ada, password=PASSWORD)

    # Ex-friends, the other side of pending requests, and who blocked Ada.
    assert notify == sorted([ids["bob"], ids["cat"], ids["dan"], ids["eve"], ids["gus"]])
    assert all(not p.exists() for p in world["ada_files"])
    assert all(p.exists() for p in world["others_files"])
    assert unnamed_files(session) == set()
    session.rollback()
    assert session.get(User, ada) is None
    assert count(session, Message) == 1
    assert session.exec(select(Message.body)).one() == "not about ada"
    assert count(session, Attachment) == 2
    assert count(session, Conversation) == 1
    assert count(session, Friendship) == 1  # Bob and Cat
    assert count(session, Block) == 0
    assert count(session, UserSession, UserSession.user_id == ada) == 0
    assert count(session, UserSession) == 1  # Bob's
    assert count(session, LoginFailure) == 1  # Bob's
    assert count(session, User) == 6
    bob = session.get(User, ids["bob"])
    assert bob is not None and bob.avatar_key is not None
    assert [f.username for f in friends.list_friends(session, actor_id=ids["bob"])] == ["cat"]
    assert friend_requests.list_requests(session, actor_id=ids["dan"]) == friend_requests.Requests(
        [], []
    )


def test_after_deletion_the_username_is_free_and_the_new_account_starts_empty(session, world):
    accounts.delete_account(session, actor_id=world["ids"]["ada"], password=PASSWORD)

    (again,) = register(session, "Ada")
    assert again != world["ids"]["ada"]
    assert friends.list_friends(session, actor_id=again) == []
    assert friend_requests.list_requests(session, actor_id=again) == friend_requests.Requests(
        [], []
    )
    assert blocks.list_blocked(session, actor_id=again) == []
    assert [u.username for u in friends.search_users(session, actor_id=again, query="eve")] == [
        "eve"
    ]
    assert sign_in(session, "ada").user.id == again


def _newest_id(session: Session, model: type) -> int:
    return int(session.exec(select(func.max(model.id))).one())  # type: ignore[attr-defined]


def test_a_deleted_accounts_ids_are_never_given_out_again(session, uploads):
    """SQLite without AUTOINCREMENT gave the next row the highest deleted id: a deleted
    account's open tab then showed the new owner's conversation. Here the newest account,
    with the newest friendship, conversation, message and file, is deleted; whatever is
    created next gets new ids (PostgreSQL's sequences never went back; SQLite's now don't)."""
    ada, bob = register(session, "ada", "bob")
    befriend(session, ada, bob, "bob")
    sent = send(session, bob, "ada", "bob's newest")
    attachment(session, bob, message_id=sent.id)
    gone = {model: _newest_id(session, model) for model in (User, Friendship, Conversation)}
    gone |= {Message: sent.id, Attachment: _newest_id(session, Attachment)}
    assert gone[User] == bob

    accounts.delete_account(session, actor_id=bob, password=PASSWORD)
    session.rollback()
    assert all(session.get(model, old) is None for model, old in gone.items())

    (cat,) = register(session, "cat")
    befriend(session, ada, cat, "cat")
    again = send(session, cat, "ada", "cat's first")
    attachment(session, cat, message_id=again.id)
    new = {model: _newest_id(session, model) for model in gone}
    assert new[User] == cat
    for model, old in gone.items():
        assert new[model] > old, model.__name__


def test_deleted_accounts_tokens_stop_working(session, world):
    token = sign_in(session, "ada").token
    accounts.delete_account(session, actor_id=world["ids"]["ada"], password=PASSWORD)
    with pytest.raises(NotAuthenticated):
        auth.authenticate(session, token)
    with pytest.raises(NotFound):
        accounts.delete_account(session, actor_id=world["ids"]["ada"], password=PASSWORD)


@pytest.mark.parametrize("password", ["wrong password", "", "x" * 500])
def test_wrong_password_deletes_nothing(session, world, password):
    before = _rows(session)
    with pytest.raises(Invalid, match="That password is not correct."):
        accounts.delete_account(session, actor_id=world["ids"]["ada"], password=password)
    after = _rows(session)
    assert after == before | {"LoginFailure": before["LoginFailure"] + 1}
    assert all(p.exists() for p in world["ada_files"] + world["others_files"])
    assert live_sessions(session, world["ids"]["ada"])


def test_crash_midway_leaves_no_unnamed_file_and_a_retry_finishes(session, world, monkeypatch):
    ada = world["ids"]["ada"]
    real_purge = expiry.purge
    calls = 0

    def crashing_purge(db: Session, message_ids: list[int]) -> list[expiry.Vanished]:
        nonlocal calls
        calls += 1
        if calls == 1:
            # The files go, then the worker dies before the rows' commit.
            storage.delete_keys(
                k
                for pair in db.exec(
                    select(Attachment.storage_key, Attachment.thumbnail_key).where(
                        Attachment.message_id.in_(message_ids)
                    )
                ).all()
                for k in pair
            )
            raise RuntimeError("worker killed")
        return real_purge(db, message_ids)

    monkeypatch.setattr(expiry, "purge", crashing_purge)
    with pytest.raises(RuntimeError):
        accounts.delete_account(session, actor_id=ada, password=PASSWORD)

    # Retryable: the account and password are there, sessions are ended, friends are gone.
    assert unnamed_files(session) == set()
    session.rollback()
    assert session.get(User, ada) is not None
    assert live_sessions(session, ada) == set()
    assert friends.list_friends(session, actor_id=world["ids"]["bob"]) == [
        users.PublicUser.of(session.get(User, world["ids"]["cat"]))
    ]
    assert sign_in(session, "ada").user.id == ada

    accounts.delete_account(session, actor_id=ada, password=PASSWORD)
    assert session.get(User, ada) is None
    assert all(not p.exists() for p in world["ada_files"])
    assert all(p.exists() for p in world["others_files"])
    assert unnamed_files(session) == set()


def test_message_arriving_during_deletion_is_purged_with_its_file(session, world, monkeypatch):
    ada, bob = world["ids"]["ada"], world["ids"]["bob"]
    real_purge_avatar = accounts._purge_avatar
    late: list[Path] = []

    def purge_avatar_then_a_late_message(db: Session, user: User) -> None:
        real_purge_avatar(db, user)
        if not late:  # a send that passed its checks before the friendship was removed
            conversation = db.exec(select(Conversation)).first()
            assert conversation is not None
            row = Message(
                conversation_id=conversation.id,
                sender_id=bob,
                recipient_id=ada,
                body="too late",
                created_at=clock.now(),
            )
            db.add(row)
            db.commit()
            late.extend(attachment(db, bob, message_id=row.id))

    monkeypatch.setattr(accounts, "_purge_avatar", purge_avatar_then_a_late_message)
    accounts.delete_account(session, actor_id=ada, password=PASSWORD)

    assert late and all(not p.exists() for p in late)
    assert unnamed_files(session) == set()
    assert count(session, Message, Message.body == "too late") == 0
    assert session.get(User, ada) is None
