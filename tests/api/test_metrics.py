"""``GET /api/metrics``: the operator's figures, behind a token; nobody else learns it exists."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from iris_reflex import metrics
from iris_reflex.live import outbox
from iris_reflex.settings import get_settings
from tests.api.test_api_openapi import (
    ada_and_bob,
    client_fixture,  # noqa: F401 (the ``client`` fixture)
    send,
)

TOKEN = "metrics-" + "m" * 32


def _value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("configured", "header"),
    [
        ("", None),
        ("", f"Bearer {TOKEN}"),
        (TOKEN, None),
        (TOKEN, "Bearer not-the-token"),
        (TOKEN, f"Basic {TOKEN}"),
    ],
)
def test_metrics_are_a_404_without_the_configured_token(client, monkeypatch, configured, header):
    monkeypatch.setattr(get_settings(), "metrics_token", configured)
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/metrics", headers=headers)
    assert response.status_code == 404
    assert "iris_" not in response.text


def test_metrics_count_published_events_and_their_delivery(client: TestClient, monkeypatch):
    monkeypatch.setattr(get_settings(), "metrics_token", TOKEN)
    ada, _ = ada_and_bob(client)
    assert client.portal is not None
    client.portal.call(outbox.settle)
    sent_before = _value("iris_events_total", kind="MessageSent")
    delivered_before = _value("iris_delivery_seconds_count", kind="MessageSent")

    send(client, ada, "bob")
    client.portal.call(outbox.settle)

    response = client.get("/api/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'iris_events_total{kind="MessageSent"}' in response.text
    assert _value("iris_events_total", kind="MessageSent") == sent_before + 1
    assert _value("iris_delivery_seconds_count", kind="MessageSent") == delivered_before + 1
    assert _value("iris_pending_fanouts") == 0
    for name in ("iris_connected_tabs", "iris_sweep_lag_seconds", "iris_tab_pushes_total"):
        assert name in response.text
