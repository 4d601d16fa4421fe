"""What ``/api/openapi.json`` promises beyond the models: refusals and hand-written bodies.

Why it is built this way:
- Every refusal has one shape (``ErrorOut``; 422 may also carry FastAPI's list of shape
  problems), and ``errors`` writes a route's ``responses=`` from its status codes, so the
  spec names each error a route can answer, with its headers (``WWW-Authenticate``,
  ``Retry-After``).
- ``JsonSafeRoute`` keeps a 422 sendable when the refused input is not text.
- The send route reads JSON or a form itself, so its request body is written out here.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from iris_reflex.api.schemas import SendMessageForm, SendMessageIn


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
