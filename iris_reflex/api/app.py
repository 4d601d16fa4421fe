"""The FastAPI app that Reflex mounts itself inside (``api_transformer``).

Everything Iris serves over plain HTTP lives under ``/api``: the web session cookie now, the
JSON API for other clients and authorized file downloads as they arrive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from iris_reflex.api import (
    accounts,
    conversations,
    friends,
    media,
    metrics,
    passkeys,
    web_session,
)
from iris_reflex.api.errors import install_error_handlers
from iris_reflex.api.limits import BodyLimitMiddleware
from iris_reflex.live import fanout, outbox


@asynccontextmanager
async def _live(_api: FastAPI) -> AsyncIterator[None]:
    """Events published by the API's actions are fanned out on this loop (inside Reflex,
    the app's own lifespan binds the same; the API alone, as in tests, needs its own)."""
    outbox.bind(fanout.deliver)
    yield
    await outbox.settle()


def create_api() -> FastAPI:
    """A new FastAPI app with every Iris route under ``/api``."""
    api = FastAPI(
        title="Iris Messenger API",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=_live,
    )
    install_error_handlers(api)
    api.add_middleware(BodyLimitMiddleware)
    api.include_router(web_session.router, prefix="/api")
    api.include_router(media.router, prefix="/api")
    api.include_router(accounts.router, prefix="/api")
    api.include_router(accounts.signed_in, prefix="/api")
    api.include_router(passkeys.router, prefix="/api")
    api.include_router(passkeys.signed_in, prefix="/api")
    api.include_router(friends.router, prefix="/api")
    api.include_router(conversations.router, prefix="/api")
    api.include_router(metrics.router, prefix="/api")

    @api.get("/api/health", tags=["meta"])
    def health() -> dict[str, str]:
        """Liveness probe."""
        return {"status": "ok"}

    return api
