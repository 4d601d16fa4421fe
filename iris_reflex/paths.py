"""Names and paths shared by the web UI (``state/``) and the JSON API (``api/``), written once
below both: the session cookie, the pages, and the routes that serve stored files (the web UI
makes those absolute on the backend's origin)."""

from __future__ import annotations

# The HttpOnly cookie that carries a browser's session token (set by ``api/web_session``).
SESSION_COOKIE = "iris_session"

LOGIN_ROUTE = "/login"
HOME_ROUTE = "/"


def attachment_url(attachment_id: int) -> str:
    return f"/api/attachments/{attachment_id}"


def thumbnail_url(attachment_id: int) -> str:
    return f"/api/attachments/{attachment_id}/thumbnail"


def avatar_url(username: str, version: str | None) -> str | None:
    """A profile picture's path, ``None`` without one; the version changes with the picture,
    so browsers fetch the new one."""
    return f"/api/users/{username}/avatar?v={version}" if version else None
