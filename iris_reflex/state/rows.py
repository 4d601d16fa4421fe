"""What lists and bubbles show, built from service results: pure functions, no Reflex state.

Kept apart from the states so the rules of display (day separators, grouping, previews,
sizes) are tested on their own and every state builds rows the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from iris_reflex.paths import attachment_url, avatar_url, thumbnail_url
from iris_reflex.services import attachments, auth, passkeys, users
from iris_reflex.services.attachments import AttachmentView
from iris_reflex.services.conversations import ConversationSummary
from iris_reflex.services.message_views import MessageView
from iris_reflex.services.users import PublicUser

# Consecutive messages of one sender this close together sit tight, as one group.
GROUP_GAP = timedelta(minutes=5)
PREVIEW_LENGTH = 80

# Pictures and videos first, then sound, then file cards (as most messengers lay them out).
_KIND_ORDER = {"image": 0, "video": 0, "audio": 1, "file": 2}


@dataclasses.dataclass
class UserRow:
    """Another user as lists show them."""

    username: str = ""
    display_name: str = ""
    initial: str = ""
    avatar: str = ""  # picture URL path, "" for the initial
    status: str = ""


@dataclasses.dataclass
class RequestRow:
    """A friend request in the incoming or outgoing list."""

    id: int = 0
    username: str = ""
    display_name: str = ""
    initial: str = ""
    avatar: str = ""
    status: str = ""


@dataclasses.dataclass
class ConversationRow:
    """A sidebar row."""

    username: str = ""
    display_name: str = ""
    initial: str = ""
    avatar: str = ""
    preview: str = ""
    time: str = ""
    unread: int = 0
    active: bool = False


@dataclasses.dataclass
class AttachmentRow:
    """A file in a bubble. URLs are paths on the backend; the page makes them absolute."""

    id: int = 0
    kind: str = "file"  # image, video, audio or file
    name: str = ""
    size: str = ""
    url: str = ""
    thumb_url: str = ""
    aspect: str = "auto"  # CSS aspect-ratio of an image, so the list does not jump


@dataclasses.dataclass
class MessageRow:
    """A message bubble. ``body`` is rendered as text, never as HTML."""

    id: int = 0
    mine: bool = False
    body: str = ""
    time: str = ""
    day: str = ""
    show_day: bool = False
    status: str = ""  # "sent" or "read" on the viewer's own messages
    notice: bool = False
    expires_ms: int = 0  # deadline in epoch milliseconds, 0 when untimed (page counts down)
    waiting_for_read: bool = False  # an after-read timer that has not started yet
    attachments: list[AttachmentRow] = dataclasses.field(default_factory=list)
    grouped: bool = False  # follows the same sender's previous message closely


@dataclasses.dataclass
class DeviceRow:
    """One signed-in session in the Devices list; ``handle`` names it for "Sign out"."""

    handle: str
    description: str
    signed_in: str
    active: str
    current: bool


@dataclasses.dataclass
class PasskeyRow:
    """One passkey in Settings; ``id`` names it for rename and delete."""

    id: int
    name: str
    created: str
    used: str


def passkey_row(info: passkeys.PasskeyInfo, tz: ZoneInfo, today: date) -> PasskeyRow:
    return PasskeyRow(
        id=info.id,
        name=info.name,
        created=moment_text(info.created_at, tz, today),
        used=moment_text(info.last_used_at, tz, today) if info.last_used_at else "Never",
    )


def moment_text(moment: datetime, tz: ZoneInfo, today: date) -> str:
    """ "Today at 13:05", "Yesterday at 09:12", or the date and time, in the viewer's zone."""
    return f"{day_text(moment, tz, today)} at {clock_text(moment, tz)}"


def device_row(device: auth.Device, tz: ZoneInfo, today: date) -> DeviceRow:
    return DeviceRow(
        handle=device.handle,
        description=device.description,
        signed_in=moment_text(device.created_at, tz, today),
        active="Active now" if device.current else moment_text(device.last_active_at, tz, today),
        current=device.current,
    )


def zone(name: str) -> ZoneInfo:
    """The browser's time zone, or UTC when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def clock_text(moment: datetime, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    return f"{local.hour:02d}:{local.minute:02d}"  # strftime("%H:%M"), at a third of the cost


def day_text(moment: datetime, tz: ZoneInfo, today: date) -> str:
    """ "Today", "Yesterday", or the full date, in the viewer's zone."""
    day = moment.astimezone(tz).date()
    if day == today:
        return "Today"
    if (today - day).days == 1:
        return "Yesterday"
    return day.strftime("%A, %d %B %Y")


def last_seen_text(moment: datetime, tz: ZoneInfo, today: date) -> str:
    day = day_text(moment, tz, today)
    day = day.lower() if day in ("Today", "Yesterday") else f"on {day}"
    return f"last seen {day} at {clock_text(moment, tz)}"


def size_text(size: int) -> str:
    """A byte count as people read it: 512 B, 12 KB, 3.4 MB."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def same_user(a: str, b: str) -> bool:
    """Usernames match in any letter case (as the services match them)."""
    return bool(a) and users.username_key(a) == users.username_key(b)


def as_id(value: object) -> int | None:
    """An id from the browser, or ``None`` when it is not a whole number a row could have
    (ids are 32-bit: PostgreSQL refuses to even compare a larger one)."""
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if 1 <= number <= 2**31 - 1 else None


def initial(name: str) -> str:
    return name[:1].upper() or "?"


def avatar_path(user: PublicUser | users.Me) -> str:
    """The picture's URL path (its version makes browsers fetch a new one), "" without."""
    return avatar_url(user.username, user.avatar_version) or ""


def user_row(user: PublicUser) -> UserRow:
    return UserRow(
        user.username,
        user.display_name,
        initial(user.display_name),
        avatar_path(user),
        user.status_message,
    )


def request_row(request_id: int, user: PublicUser) -> RequestRow:
    return RequestRow(
        request_id,
        user.username,
        user.display_name,
        initial(user.display_name),
        avatar_path(user),
        user.status_message,
    )


def conversation_row(
    summary: ConversationSummary, *, viewer_id: int, active_username: str, tz: ZoneInfo
) -> ConversationRow:
    last = summary.last_message
    preview = ""
    if last is not None:
        text = last.body or attachments.describe(last.attachments)
        preview = ("You: " if last.sender_id == viewer_id else "") + text
    return ConversationRow(
        username=summary.friend.username,
        display_name=summary.friend.display_name,
        initial=initial(summary.friend.display_name),
        avatar=avatar_path(summary.friend),
        preview=preview[:PREVIEW_LENGTH],
        time=clock_text(summary.last_activity, tz) if last else "",
        unread=summary.unread,
        active=same_user(summary.friend.username, active_username),
    )


def attachment_row(view: AttachmentView) -> AttachmentRow:
    return AttachmentRow(
        id=view.id,
        kind=view.kind,
        name=view.name,
        size=size_text(view.size_bytes),
        url=attachment_url(view.id),
        thumb_url=thumbnail_url(view.id) if view.has_thumbnail else "",
        aspect=f"{view.width} / {view.height}" if view.width and view.height else "auto",
    )


def message_rows(
    views: Sequence[MessageView], *, viewer_id: int, tz: ZoneInfo, today: date
) -> list[MessageRow]:
    """Display rows, oldest first, with a day separator before each new day; a message
    continues its sender's group when it follows theirs within ``GROUP_GAP``."""
    rows: list[MessageRow] = []
    previous_day = ""
    previous: MessageView | None = None
    for view in views:
        day = day_text(view.created_at, tz, today)
        mine = view.sender_id == viewer_id
        grouped = (
            previous is not None
            and day == previous_day
            and previous.kind == view.kind == "text"
            and previous.sender_id == view.sender_id
            and view.created_at - previous.created_at <= GROUP_GAP
        )
        previous = view
        rows.append(
            MessageRow(
                id=view.id,
                mine=mine,
                body=view.body,
                time=clock_text(view.created_at, tz),
                day=day,
                show_day=day != previous_day,
                grouped=grouped,
                status=("read" if view.read_at else "sent") if mine else "",
                notice=view.kind != "text",
                expires_ms=int(view.expires_at.timestamp() * 1000) if view.expires_at else 0,
                waiting_for_read=view.timer_mode == "after_read" and not view.read_at,
                attachments=[
                    attachment_row(a)
                    for a in sorted(view.attachments, key=lambda a: _KIND_ORDER[a.kind])
                ],
            )
        )
        previous_day = day
    return rows
