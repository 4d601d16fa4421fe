"""The JSON shapes of the ``/api`` routes: what clients send and exactly what they get back.

Why it is built this way:
- Request models check *types* only (a string, a whole number, a known timer mode); every
  rule about values (lengths, ranges, who may do what) stays in the services, so the API,
  the web UI and the jobs refuse the same things with the same words.
- Response models are built from the services' dataclasses with ``of``: only the fields named
  here ever leave the server (never a hash or a setting of someone else), and
  ``/api/openapi.json`` describes each response exactly, errors included.
- Timestamps are aware UTC datetimes, serialized as ISO 8601 with ``Z``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from starlette.requests import Request
from starlette.responses import Response

from iris_reflex.models import TimerMode
from iris_reflex.paths import attachment_url, thumbnail_url
from iris_reflex.services import auth, friends
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


def _json_safe(value: Any) -> Any:
    """``value`` with every string encodable as UTF-8 (lone surrogates become "?")."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_json_safe(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


class JsonSafeRoute(APIRoute):
    """A route whose 422 can always be sent.

    FastAPI's validation error echoes the offending input; a lone surrogate in it (valid
    JSON, ``"\\ud800"``, but not text) cannot be encoded as UTF-8, which turned a refusal
    into a 500. The errors are made encodable before FastAPI's handler renders them.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                raise RequestValidationError(_json_safe(list(exc.errors()))) from None

        return route_handler


class _In(BaseModel):
    """Request bodies: unknown fields are refused rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------------------------- errors


class ErrorOut(BaseModel):
    """Every refusal: a sentence meant for the person using the client."""

    detail: str


class ValidationIssue(BaseModel):
    """One problem FastAPI found in the request's shape."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """422: a service's sentence, or FastAPI's list of shape problems."""

    detail: str | list[ValidationIssue]


_DESCRIPTIONS = {
    400: "The body cannot be read (for example: it is not UTF-8).",
    401: "No token, or a malformed, expired, tampered or revoked one.",
    403: "Not allowed (for example: you blocked this user).",
    404: "Missing, or not yours to see (one answer for both).",
    409: "Clashes with existing data (a taken username, a duplicate request).",
    413: "Over a size limit or quota.",
    415: "Send JSON, or a form: multipart/form-data (with files) or urlencoded.",
    422: "The input breaks a rule or has the wrong shape.",
    429: "Too many failed attempts; retry after the number of seconds in Retry-After.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that can refuse with these status codes."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {
            "model": ValidationErrorOut if code == 422 else ErrorOut,
            "description": _DESCRIPTIONS[code],
        }
        if code == 401:
            entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        if code == 429:
            entry["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}
            }
        out[code] = entry
    return out


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
    def of(cls, request: friends.FriendRequest) -> FriendRequestOut:
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
    def of(cls, requests: friends.Requests) -> RequestsOut:
        return cls(
            incoming=[FriendRequestOut.of(r) for r in requests.incoming],
            outgoing=[FriendRequestOut.of(r) for r in requests.outgoing],
        )


class RequestOutcomeOut(BaseModel):
    """What became of a request: still ``pending``, or ``accepted`` (now friends)."""

    id: int
    status: Literal["pending", "accepted"]

    @classmethod
    def of(cls, outcome: friends.RequestOutcome) -> RequestOutcomeOut:
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


def _form_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s schema as a form has it: a form cannot send null, only leave a field out
    (or empty), so optional fields are just not required."""
    schema = model.model_json_schema()
    for name, prop in schema["properties"].items():
        branches = [b for b in prop.get("anyOf", ()) if b != {"type": "null"}]
        if len(branches) == 1:
            extra = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
            schema["properties"][name] = {**branches[0], **extra}
    return schema


def send_message_openapi() -> dict[str, Any]:
    """The request body of the send route: JSON, a multipart form with files, or a plain
    urlencoded form."""
    form = _form_schema(SendMessageForm)
    with_files = {**form, "properties": {**form["properties"]}}
    with_files["properties"]["files"] = {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "description": "One or more files.",
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": SendMessageIn.model_json_schema()},
                "multipart/form-data": {"schema": with_files},
                "application/x-www-form-urlencoded": {"schema": form},
            },
        }
    }


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
