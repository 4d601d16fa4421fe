"""CORS that answers only this deployment's origins, with nothing at all for any other.

Reflex adds Starlette's ``CORSMiddleware`` with ``allow_credentials=True`` to every layer of
the app (``App._add_cors``, called on its own Starlette app, on the FastAPI app it mounts in,
and on the top app). Given ``IRIS_ALLOWED_ORIGINS`` (``rxconfig.py``) it no longer reflects a
foreign ``Origin``, but it still adds ``Access-Control-Allow-Credentials: true`` to every
response that names an origin, allowed or not, and to a refused preflight. Harmless without
``Access-Control-Allow-Origin``, yet it is a grant Iris never means to make: here a foreign
origin's response carries no ``Access-Control-Allow-*`` header. ``install`` puts this class
where Reflex looks for its CORS layer (``App._add_cors`` is read on the class at every call).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import Message, Send

from iris_reflex.settings import get_settings

_GRANTS = (
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-allow-origin",
    "access-control-max-age",
    "access-control-expose-headers",
    "access-control-allow-private-network",
)


def _strip_grants(headers: MutableHeaders) -> None:
    for name in _GRANTS:
        del headers[name]


class OwnOriginsOnly(CORSMiddleware):
    """Starlette's CORS for our origins; no CORS header at all for any other origin."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if not self.is_allowed_origin(request_headers["origin"]):
            _strip_grants(response.headers)
        return response

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        origin = request_headers.get("origin")
        if origin is None or self.is_allowed_origin(origin):
            await super().send(message, send, request_headers)
            return

        async def without_grants(out: Message) -> None:
            if out["type"] == "http.response.start":
                _strip_grants(MutableHeaders(scope=out))
            await send(out)

        await super().send(message, without_grants, request_headers)


def add_cors(api: Starlette) -> None:
    """Reflex's ``App._add_cors``, with ``OwnOriginsOnly`` and Iris's origins."""
    api.add_middleware(
        OwnOriginsOnly,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
        allow_origins=list(get_settings().origins()),
    )


def install(app_class: type) -> None:
    """Make Reflex's app class build its CORS layers with ``add_cors``."""
    if not hasattr(app_class, "_add_cors"):
        raise RuntimeError("Reflex no longer has App._add_cors: check iris_reflex/cors.py.")
    app_class._add_cors = staticmethod(add_cors)
