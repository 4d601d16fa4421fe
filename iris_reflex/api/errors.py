"""Maps domain errors to JSON responses ``{"detail": ...}`` with the right status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from iris_reflex.errors import DomainError, NotAuthenticated, Throttled


def install_error_handlers(app: FastAPI) -> None:
    """Register the one translation from ``DomainError`` to HTTP."""

    @app.exception_handler(DomainError)
    async def _domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        headers: dict[str, str] = {}
        if isinstance(exc, Throttled):
            headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, NotAuthenticated):
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=headers)
