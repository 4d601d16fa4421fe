"""A cap on the size of every ``/api`` request body, enforced before a route reads it.

Why: FastAPI reads a JSON body whole into memory, and Starlette spools multipart file parts to
the temporary folder without limit, before any route code runs. Without a cap, one request
(signed in or not) could fill memory or disk. This middleware refuses a declared
``Content-Length`` over the cap at once, and counts the bytes of a chunked body as they arrive,
answering 413 as soon as it goes over. Raw file uploads stream through ``storage.receive``,
which enforces the per-file limit itself (and names it), so they pass through untouched.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from iris_reflex.settings import get_settings

JSON_LIMIT = 64 * 1024
# Routes whose body is one raw file (streamed to disk with its own limit).
RAW_FILE_PATHS = ("/api/uploads", "/api/me/avatar")


class BodyTooLarge(BaseException):  # noqa: N818 (not an error a route should catch)
    """Raised inside the app's ``receive`` when the body passes the cap.

    A ``BaseException``, so that no route's ``except Exception`` (FastAPI turns body-reading
    failures into a 400) can swallow it before this middleware answers 413.
    """


def body_limit(content_type: str) -> int:
    """The most bytes a request with this content type may send (raw uploads aside)."""
    if content_type.startswith("multipart/form-data"):
        file_limit = get_settings().max_upload_mb * 1024 * 1024
        return get_settings().max_files_per_message * file_limit + 1024 * 1024
    return JSON_LIMIT


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps(
        {"detail": f"The request is too large (at most {limit // 1024:,} KB here)."}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """ASGI middleware: 413 for ``/api`` bodies over ``body_limit`` (other paths untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith("/api/") or path in RAW_FILE_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit = body_limit(headers.get("content-type", ""))
        declared = headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            await _refuse(send, limit)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _refuse(send, limit)
