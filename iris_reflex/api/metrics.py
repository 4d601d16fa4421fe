"""``GET /api/metrics``: Prometheus figures for an operator, never for the public.

Only a caller sending ``Authorization: Bearer <IRIS_METRICS_TOKEN>`` gets them; anyone else,
and everyone while no token is configured, gets the same 404 as an unknown path.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from iris_reflex import metrics
from iris_reflex.settings import get_settings

router = APIRouter(tags=["meta"], include_in_schema=False)


def _allowed(request: Request) -> bool:
    wanted = get_settings().metrics_token
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return (
        bool(wanted)
        and scheme.lower() == "bearer"
        and secrets.compare_digest(given.strip().encode(), wanted.encode())
    )


@router.get("/metrics")
def read_metrics(request: Request) -> Response:
    """The live path's and the sweep's figures, in Prometheus's text format."""
    if not _allowed(request):
        return Response(status_code=404)
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
