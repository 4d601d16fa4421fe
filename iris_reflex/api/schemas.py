"""The JSON shapes of the ``/api`` routes: what clients send and exactly what they get back.

Why it is built this way:
- Request models check *types* only (a string, a whole number, a known timer mode); every
  rule about values (lengths, ranges, who may do what) stays in the services, so the API,
  the web UI and the jobs refuse the same things with the same words.
- Response models are built from the services' dataclasses with ``of``: only the fields named
  here ever leave the server (never a hash or a setting of someone else), and
  ``/api/openapi.json`` describes each response exactly (errors and the send route's
  hand-written body: ``openapi.py``).
- Timestamps are aware UTC datetimes, serialized as ISO 8601 with ``Z``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from iris_reflex.models import TimerMode
from iris_reflex.paths import attachment_url, thumbnail_url
from iris_reflex.services import auth, friend_requests, passkeys
from iris_reflex.services.attachments import AttachmentView
from iris_reflex.services.conversations import ConversationSummary
from iris_reflex.services.message_views import MessageView
from iris_reflex.services.users import Me, PublicUser

# Ids are 32-bit integer columns: a larger one cannot exist, and PostgreSQL refuses to even
# compare it (SQLite past 64 bits); refused as input instead of failing as a query.
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]

# The enum inlined (no $ref), so the multipart form's hand-written schema can use it too.
TimerModeName = Annotated[
    TimerMode, WithJsonSchema({"type": "string", "enum": [m.value for m in TimerMode]})
]


def _encodable(value: str) -> str:
    # JSON may escape a lone surrogate ("\\ud800"): not text, and no database can store it.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("Text must be valid Unicode (a lone surrogate is not).") from None
    return value


Text = Annotated[str, AfterValidator(_encodable)]
"""A string of real text; every string a client sends is one."""


class _In(BaseModel):
    """Request bodies: unknown fields are refused rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------- accounts


class Credentials(_In):
    """A username and password, to register or to sign in."""

    username: Text
    password: Text


class UserOut(BaseModel):
    """What anyone may see of a user."""

    id: int
    username: str
    display_name: str

    @classmethod
    def of(cls, user: PublicUser) -> UserOut:
        return cls(id=user.id, username=user.username, display_name=user.display_name)


class TokenOut(BaseModel):
    """A session token to send as ``Authorization: Bearer <access_token>``."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme, not a secret
    expires_in: int = Field(description="Seconds until the token expires.")

    @classmethod
    def of(cls, signed: auth.SignedIn, now: datetime) -> TokenOut:
        seconds = max(0, int((signed.expires_at - now).total_seconds()))
        return cls(access_token=signed.token, expires_in=seconds)


class SecondFactorOut(BaseModel):
    """The password was right; the account also asks for a second step. Send
    ``second_factor_token`` with a code to ``POST /api/auth/login/second-factor`` within
    ``expires_in`` seconds; it opens one session at most."""

    second_factor_required: Literal[True] = True
    second_factor_token: str
    expires_in: int = Field(description="Seconds until the token expires.")
    methods: list[str] = Field(
        description="Ways to pass the step: totp (a 6-digit code), recovery_code, passkey "
        "(POST /api/auth/login/second-factor/passkey/options, then .../passkey)."
    )


class SecondFactorIn(_In):
    """The token from the login answer and a code: six digits from the authenticator app,
    or one of the recovery codes."""

    second_factor_token: Text = Field(max_length=2048)
    code: Text = Field(max_length=64)


# ------------------------------------------------------------------------------- passkeys

WebAuthnJson = Annotated[
    dict[str, Any],
    Field(
        description="A PublicKeyCredential as JSON (base64url for binary fields), the shape "
        "of PublicKeyCredential.toJSON() in browsers."
    ),
]


class PasskeyOptionsOut(BaseModel):
    """WebAuthn options: pass ``public_key`` (binary fields are base64url) as ``publicKey``
    to ``navigator.credentials.create`` or ``.get``. Its challenge works once, for 5
    minutes."""

    public_key: dict[str, Any]


class PasskeySignInIn(_In):
    """The browser's answer to a sign-in challenge (``navigator.credentials.get``)."""

    credential: WebAuthnJson


class SecondFactorTokenIn(_In):
    """The ``second_factor_token`` from the login's 202 answer."""

    second_factor_token: Text = Field(max_length=2048)


class PasskeySecondFactorIn(_In):
    """The login's ``second_factor_token`` and the answer to its passkey challenge."""

    second_factor_token: Text = Field(max_length=2048)
    credential: WebAuthnJson


class ReauthenticateIn(_In):
    """Proof that the caller is the account's owner: the password, or a current code from
    the authenticator app (or a recovery code)."""

    password: Text = Field(default="", max_length=4096)
    code: Text = Field(default="", max_length=64)


class PasskeyIn(_In):
    """A new passkey: its name (1 to 64 characters) and the browser's answer to the
    registration challenge (``navigator.credentials.create``)."""

    name: Text = Field(max_length=256)
    credential: WebAuthnJson


class PasskeyNameIn(_In):
    """A passkey's new name (1 to 64 characters)."""

    name: Text = Field(max_length=256)


class PasskeyOut(BaseModel):
    """One of the caller's passkeys."""

    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, info: passkeys.PasskeyInfo) -> PasskeyOut:
        return cls(
            id=info.id, name=info.name, created_at=info.created_at, last_used_at=info.last_used_at
        )


class DeviceOut(BaseModel):
    """One of the caller's signed-in sessions. ``id`` names it for ``DELETE
    /api/sessions/{id}``; ``current`` is the session of the token asking."""

    id: str
    device: str
    created_at: datetime
    last_active_at: datetime
    current: bool

    @classmethod
    def of(cls, device: auth.Device) -> DeviceOut:
        return cls(
            id=device.handle,
            device=device.description,
            created_at=device.created_at,
            last_active_at=device.last_active_at,
            current=device.current,
        )


class MeOut(BaseModel):
    """The caller's own account."""

    id: int
    username: str
    display_name: str
    status_message: str
    theme: str
    read_receipts: bool
    created_at: datetime

    @classmethod
    def of(cls, me: Me) -> MeOut:
        return cls(
            id=me.id,
            username=me.username,
            display_name=me.display_name,
            status_message=me.status_message,
            theme=me.theme,
            read_receipts=me.read_receipts,
            created_at=me.created_at,
        )


class ProfileIn(_In):
    """Fields to change; a missing or null field is left as it is."""

    display_name: Text | None = None
    status_message: Text | None = None


# -------------------------------------------------------------------------------- friends


class UsernameIn(_In):
    """Another user, by username (any letter case)."""

    username: Text


class FriendRequestOut(BaseModel):
    """A pending friend request."""

    id: int
    requester: UserOut
    addressee: UserOut
    created_at: datetime

    @classmethod
    def of(cls, request: friend_requests.FriendRequest) -> FriendRequestOut:
        return cls(
            id=request.id,
            requester=UserOut.of(request.requester),
            addressee=UserOut.of(request.addressee),
            created_at=request.created_at,
        )


class RequestsOut(BaseModel):
    """Pending requests to and from the caller, newest first."""

    incoming: list[FriendRequestOut]
    outgoing: list[FriendRequestOut]

    @classmethod
    def of(cls, requests: friend_requests.Requests) -> RequestsOut:
        return cls(
            incoming=[FriendRequestOut.of(r) for r in requests.incoming],
            outgoing=[FriendRequestOut.of(r) for r in requests.outgoing],
        )


class RequestOutcomeOut(BaseModel):
    """What became of a request: still ``pending``, or ``accepted`` (now friends)."""

    id: int
    status: Literal["pending", "accepted"]

    @classmethod
    def of(cls, outcome: friend_requests.RequestOutcome) -> RequestOutcomeOut:
        return cls(id=outcome.request_id, status=outcome.status)  # type: ignore[arg-type]


# -------------------------------------------------------------------------- conversations


class MessageOut(BaseModel):
    """A message as the caller may see it. ``kind`` is ``text``, or ``notice`` for lines
    Iris writes (a timer change); ``read_at`` is shown only with shared read receipts."""

    id: int
    conversation_id: int
    sender_id: int
    recipient_id: int
    kind: str
    body: str
    created_at: datetime
    expires_at: datetime | None
    timer_seconds: int | None
    timer_mode: str | None
    read_at: datetime | None
    attachments: list[AttachmentOut]

    @classmethod
    def of(cls, view: MessageView) -> MessageOut:
        return cls(
            id=view.id,
            conversation_id=view.conversation_id,
            sender_id=view.sender_id,
            recipient_id=view.recipient_id,
            kind=view.kind,
            body=view.body,
            created_at=view.created_at,
            expires_at=view.expires_at,
            timer_seconds=view.timer_seconds,
            timer_mode=view.timer_mode,
            read_at=view.read_at,
            attachments=[AttachmentOut.of(a) for a in view.attachments],
        )


class ConversationOut(BaseModel):
    """A conversation with a friend: the newest visible message and the unread count."""

    id: int
    friend: UserOut
    last_message: MessageOut | None
    unread: int
    last_activity: datetime

    @classmethod
    def of(cls, summary: ConversationSummary) -> ConversationOut:
        last = summary.last_message
        return cls(
            id=summary.conversation_id,
            friend=UserOut.of(summary.friend),
            last_message=MessageOut.of(last) if last is not None else None,
            unread=summary.unread,
            last_activity=summary.last_activity,
        )


class SendMessageIn(_In):
    """A message to a friend. ``expires_in_seconds``: null for the conversation's default
    timer, 0 for none, else 5 seconds to 365 days. ``timer_mode``: when the countdown starts
    (null: the conversation's mode). ``attachment_ids``: files uploaded with
    ``POST /api/uploads``; with files the text may be empty."""

    body: Text = ""
    expires_in_seconds: int | None = None
    timer_mode: TimerModeName | None = None
    attachment_ids: list[Id] = Field(default_factory=list)


class SendMessageForm(_In):
    """The same message as ``multipart/form-data``, files attached as ``files``."""

    body: Text = ""
    expires_in_seconds: int | None = None
    timer_mode: TimerModeName | None = None


class ReadIn(_In):
    """Mark the friend's messages read, up to this id (all of them when null)."""

    up_to_message_id: Id | None = None


class ReadOut(BaseModel):
    """The messages that this call marked read (empty when nothing was unread)."""

    message_ids: list[int]


class TimerIn(_In):
    """The conversation's default timer: ``seconds`` null or 0 turns it off."""

    seconds: int | None
    mode: TimerModeName = TimerMode.FROM_SEND


class AttachmentOut(BaseModel):
    """An uploaded file as clients see it."""

    id: int
    name: str
    type: str
    kind: str
    size: int
    width: int | None
    height: int | None
    url: str
    thumbnail_url: str | None

    @classmethod
    def of(cls, view: AttachmentView) -> AttachmentOut:
        return cls(
            id=view.id,
            name=view.name,
            type=view.mime_type,
            kind=view.kind,
            size=view.size_bytes,
            width=view.width,
            height=view.height,
            url=attachment_url(view.id),
            thumbnail_url=thumbnail_url(view.id) if view.has_thumbnail else None,
        )
