"""The paths of the routes that serve stored files, written once for the API's JSON and the
web UI (which makes them absolute on the backend's origin)."""

from __future__ import annotations


def attachment_url(attachment_id: int) -> str:
    return f"/api/attachments/{attachment_id}"


def thumbnail_url(attachment_id: int) -> str:
    return f"/api/attachments/{attachment_id}/thumbnail"


def avatar_url(username: str, version: str | None) -> str | None:
    """A profile picture's path, ``None`` without one; the version changes with the picture,
    so browsers fetch the new one."""
    return f"/api/users/{username}/avatar?v={version}" if version else None
