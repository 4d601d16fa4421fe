"""The whole schema of Iris as SQLModel tables.

Pairs of users (friendships, conversations) are stored once, with ``user_low_id <
user_high_id``, so a unique constraint makes duplicates impossible whichever side acts.
Timestamps are aware UTC (``UTCDateTime``). The migration in ``alembic/versions`` creates
exactly these tables and indexes; ``tests/test_migrations.py`` checks they agree.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from iris_reflex.models.enums import FriendshipStatus, MessageKind, Theme
from iris_reflex.models.types import UTCDateTime

# Ids name people and things, so one is never given out twice: SQLite without AUTOINCREMENT
# reuses the highest deleted rowid (a deleted account's id went to the next new account,
# whose conversation the deleted account's open tab then showed). PostgreSQL's identity
# sequences never go back; on SQLite this keyword turns AUTOINCREMENT on.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


def _fk(target: str, *, nullable: bool = False, ondelete: str = "CASCADE") -> Column:
    return Column(Integer, ForeignKey(target, ondelete=ondelete), nullable=nullable)


def _ts(*, nullable: bool = False, index: bool = False) -> Column:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class User(SQLModel, table=True):
    """An account. ``username`` is shown as typed; ``username_key`` (lower case) is unique."""

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=32)
    username_key: str = Field(max_length=32, unique=True)
    display_name: str = Field(default="", max_length=64)
    status_message: str = Field(default="", max_length=140)
    password_hash: str = Field(max_length=255)
    avatar_key: str | None = Field(default=None, max_length=64)
    theme: str = Field(default=Theme.SYSTEM.value, max_length=8)
    read_receipts: bool = Field(default=True)
    default_timer_seconds: int | None = Field(default=None)
    created_at: datetime = Field(sa_column=_ts())
    last_seen_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))

    __table_args__ = (NEVER_REUSE_IDS,)


class UserSession(SQLModel, table=True):
    """One signed-in device. A JWT names its session (``sid``); revoking the row ends it."""

    __tablename__ = "user_sessions"

    id: str = Field(primary_key=True, max_length=43)
    user_id: int = Field(sa_column=_fk("users.id"))
    created_at: datetime = Field(sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts())
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # What the Devices list shows: a short description of the browser that signed in (from
    # its User-Agent, truncated), and when the session last did something (updated at most
    # every few minutes, not on every event).
    device: str = Field(default="", max_length=80)
    last_active_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))

    __table_args__ = (Index("ix_user_sessions_user_id", "user_id"),)


class TotpSecret(SQLModel, table=True):
    """A user's authenticator-app secret. Two-step sign-in is on once ``confirmed_at`` is set
    (a code from the app was accepted); ``last_step`` is the newest time step accepted, so a
    code is never accepted twice."""

    __tablename__ = "totp_secrets"

    user_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        )
    )
    secret: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())
    confirmed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_step: int | None = Field(default=None)


class RecoveryCode(SQLModel, table=True):
    """One single-use recovery code, stored as the SHA-256 of the code (never the code)."""

    __tablename__ = "recovery_codes"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column=_fk("users.id"))
    code_hash: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())
    used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))

    __table_args__ = (
        UniqueConstraint("user_id", "code_hash", name="uq_recovery_codes_user_hash"),
        NEVER_REUSE_IDS,
    )


class Passkey(SQLModel, table=True):
    """A WebAuthn credential (passkey) a user registered. ``credential_id`` is the
    authenticator's id for it (base64url), ``public_key`` its COSE key; ``sign_count`` is the
    authenticator's last counter, kept to notice a cloned authenticator (it must grow).
    ``user_handle`` is the random WebAuthn user id the authenticator stores with it (one per
    user, never the database id or the username)."""

    __tablename__ = "passkeys"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column=_fk("users.id"))
    credential_id: str = Field(max_length=1400, unique=True)
    public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sign_count: int = Field(sa_column=Column(BigInteger, nullable=False))
    transports: str = Field(default="", max_length=128)
    user_handle: str = Field(max_length=128)
    name: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())
    last_used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))

    __table_args__ = (Index("ix_passkeys_user_id", "user_id"), NEVER_REUSE_IDS)


class PasskeyChallenge(SQLModel, table=True):
    """A WebAuthn challenge handed out and not yet answered. Keyed by the challenge itself
    (base64url of 32 random bytes): answering deletes the row, and of any number of answers,
    concurrent ones included, exactly one deletes it. ``purpose`` is ``register``, ``sign_in``
    or ``second_factor``; ``user_id`` is who may answer it (none for a passkey sign-in, where
    the passkey names its user)."""

    __tablename__ = "passkey_challenges"

    challenge: str = Field(primary_key=True, max_length=86)
    purpose: str = Field(max_length=16)
    user_id: int | None = Field(default=None, sa_column=_fk("users.id", nullable=True))
    # A registration's WebAuthn user id, stored with the passkey once it is made.
    user_handle: str = Field(default="", max_length=128)
    expires_at: datetime = Field(sa_column=_ts(index=True))


class UsedHandoff(SQLModel, table=True):
    """A redeemed handoff token, by its ``jti``: the primary key makes a second redemption
    fail to insert, on both databases, however many arrive at once. Pruned after expiry."""

    __tablename__ = "used_handoffs"

    jti: str = Field(primary_key=True, max_length=43)
    expires_at: datetime = Field(sa_column=_ts())


class LoginFailure(SQLModel, table=True):
    """A failed login, kept for the throttling window (per username and per address)."""

    __tablename__ = "login_failures"

    id: int | None = Field(default=None, primary_key=True)
    username_key: str = Field(max_length=64)
    ip: str = Field(max_length=64)
    failed_at: datetime = Field(sa_column=_ts())

    __table_args__ = (
        Index("ix_login_failures_username_at", "username_key", "failed_at"),
        Index("ix_login_failures_ip_at", "ip", "failed_at"),
    )


class RateCounter(SQLModel, table=True):
    """How often ``key`` did ``bucket`` (a friend request, a registration, a search) in the
    window that started at ``window_start``: one row per key, updated in one statement."""

    __tablename__ = "rate_counters"

    bucket: str = Field(primary_key=True, max_length=32)
    key: str = Field(primary_key=True, max_length=128)
    window_start: datetime = Field(sa_column=_ts(index=True))
    hits: int = Field(default=0)


class Friendship(SQLModel, table=True):
    """A friend request (pending) or a friendship (accepted) between two users."""

    __tablename__ = "friendships"

    id: int | None = Field(default=None, primary_key=True)
    user_low_id: int = Field(sa_column=_fk("users.id"))
    user_high_id: int = Field(sa_column=_fk("users.id"))
    requester_id: int = Field(sa_column=_fk("users.id"))
    status: str = Field(default=FriendshipStatus.PENDING.value, max_length=16)
    created_at: datetime = Field(sa_column=_ts())
    accepted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))

    __table_args__ = (
        UniqueConstraint("user_low_id", "user_high_id", name="uq_friendships_pair"),
        CheckConstraint("user_low_id < user_high_id", name="ck_friendships_ordered_pair"),
        Index("ix_friendships_high_status", "user_high_id", "status"),
        NEVER_REUSE_IDS,
    )


class Block(SQLModel, table=True):
    """``blocker`` blocked ``blocked``: no requests or messages from them; they are not told."""

    __tablename__ = "blocks"

    id: int | None = Field(default=None, primary_key=True)
    blocker_id: int = Field(sa_column=_fk("users.id"))
    blocked_id: int = Field(sa_column=_fk("users.id"))
    created_at: datetime = Field(sa_column=_ts())

    __table_args__ = (
        UniqueConstraint("blocker_id", "blocked_id", name="uq_blocks_pair"),
        Index("ix_blocks_blocked_id", "blocked_id"),
        NEVER_REUSE_IDS,
    )


class Conversation(SQLModel, table=True):
    """The one-to-one thread of two users: its default timer and last activity."""

    __tablename__ = "conversations"

    id: int | None = Field(default=None, primary_key=True)
    user_low_id: int = Field(sa_column=_fk("users.id"))
    user_high_id: int = Field(sa_column=_fk("users.id"))
    timer_seconds: int | None = Field(default=None)
    timer_mode: str | None = Field(default=None, max_length=16)
    timer_set_by_id: int | None = Field(
        default=None, sa_column=_fk("users.id", nullable=True, ondelete="SET NULL")
    )
    created_at: datetime = Field(sa_column=_ts())

    __table_args__ = (
        UniqueConstraint("user_low_id", "user_high_id", name="uq_conversations_pair"),
        CheckConstraint("user_low_id < user_high_id", name="ck_conversations_ordered_pair"),
        Index("ix_conversations_high", "user_high_id"),
        NEVER_REUSE_IDS,
    )


class Message(SQLModel, table=True):
    """A message. Hidden the moment ``expires_at`` passes or ``deleted_at`` is set; the sweep
    then deletes its files and the row."""

    __tablename__ = "messages"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(sa_column=_fk("conversations.id"))
    sender_id: int = Field(sa_column=_fk("users.id"))
    recipient_id: int = Field(sa_column=_fk("users.id"))
    kind: str = Field(default=MessageKind.TEXT.value, max_length=8)
    body: str = Field(default="", max_length=4000)
    created_at: datetime = Field(sa_column=_ts())
    timer_seconds: int | None = Field(default=None)
    timer_mode: str | None = Field(default=None, max_length=16)
    expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    read_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    deleted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))

    __table_args__ = (
        # A conversation's newest-first page: keyset on (conversation_id, id).
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        # A user's unread count: only unread rows are indexed.
        Index(
            "ix_messages_unread",
            "recipient_id",
            "conversation_id",
            postgresql_where=text("read_at IS NULL"),
            sqlite_where=text("read_at IS NULL"),
        ),
        # The next message to expire, and the sweep's batch.
        Index(
            "ix_messages_expires_at",
            "expires_at",
            postgresql_where=text("expires_at IS NOT NULL"),
            sqlite_where=text("expires_at IS NOT NULL"),
        ),
        Index(
            "ix_messages_deleted_at",
            "deleted_at",
            postgresql_where=text("deleted_at IS NOT NULL"),
            sqlite_where=text("deleted_at IS NOT NULL"),
        ),
        NEVER_REUSE_IDS,
    )


class Attachment(SQLModel, table=True):
    """A stored file. ``storage_key`` is random and is the only name on disk."""

    __tablename__ = "attachments"

    id: int | None = Field(default=None, primary_key=True)
    message_id: int | None = Field(
        default=None, sa_column=_fk("messages.id", nullable=True, ondelete="SET NULL")
    )
    uploader_id: int = Field(sa_column=_fk("users.id"))
    storage_key: str = Field(max_length=64, unique=True)
    original_name: str = Field(max_length=255)
    mime_type: str = Field(max_length=127)
    size_bytes: int
    width: int | None = Field(default=None)
    height: int | None = Field(default=None)
    thumbnail_key: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_column=_ts())

    __table_args__ = (
        Index("ix_attachments_message_id", "message_id"),
        Index("ix_attachments_uploader_id", "uploader_id"),
        NEVER_REUSE_IDS,
    )
