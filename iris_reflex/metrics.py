"""What an operator watches: Prometheus metrics of the live path and the sweep.

Recorded where things happen (the outbox, the fan-out, the presence watcher, the sweeper)
and served by ``GET /api/metrics`` to a caller holding ``IRIS_METRICS_TOKEN``. Each backend
worker counts for itself (a scrape reaches one worker); the figures carry no user data.
"""

from __future__ import annotations

import functools
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

# Buckets from a millisecond to a minute: the live path's targets are tens of milliseconds,
# and an overloaded worker's backlog is counted in seconds.
_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

EVENTS = Counter(
    "iris_events_total", "Events published after a commit, by kind.", ["kind"], registry=REGISTRY
)
DELIVERY = Histogram(
    "iris_delivery_seconds",
    "From an event's publication to every tab that must hear of it being updated.",
    ["kind"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
FANOUT_FAILURES = Counter(
    "iris_fanout_failures_total",
    "Fan-outs that raised (logged; the action stands).",
    registry=REGISTRY,
)
PENDING_FANOUTS = Gauge(
    "iris_pending_fanouts",
    "Fan-outs published and not finished yet (the queue).",
    registry=REGISTRY,
)
PUSHES = Counter(
    "iris_tab_pushes_total", "Changes applied to open tabs, by kind.", ["kind"], registry=REGISTRY
)
RELAYED = Counter(
    "iris_relayed_changes_total",
    "Changes handed to the worker holding the tab's socket (several workers), by kind.",
    ["kind"],
    registry=REGISTRY,
)
RELAY_REFUSED = Counter(
    "iris_relay_refused_total",
    "Relayed changes dropped because this deployment had not sealed them.",
    registry=REGISTRY,
)
RELAYED_PENDING = Gauge(
    "iris_relayed_pending",
    "Changes relayed to this worker and not applied yet (the queue).",
    registry=REGISTRY,
)
MERGED_CHANGES = Counter(
    "iris_merged_changes_total",
    "Re-read changes folded into one already on its way to the same user's tabs, by kind.",
    ["kind"],
    registry=REGISTRY,
)
CONNECTED_TABS = Gauge(
    "iris_connected_tabs",
    "Tabs loaded on this worker whose websocket is still open.",
    registry=REGISTRY,
)
ONLINE_USERS = Gauge(
    "iris_online_users",
    "Users this worker announced online (one of their tabs loaded here).",
    registry=REGISTRY,
)
SWEEP_SECONDS = Histogram(
    "iris_sweep_seconds",
    "Duration of one expiry sweep run.",
    buckets=_LATENCY,
    registry=REGISTRY,
)
SWEEP_LAG = Histogram(
    "iris_sweep_lag_seconds",
    "From a message's deadline to its deletion by the sweep.",
    buckets=_LATENCY,
    registry=REGISTRY,
)
SWEPT = Counter(
    "iris_swept_messages_total",
    "Messages the sweep deleted (expired or deleted for everyone).",
    registry=REGISTRY,
)


_Labelled = TypeVar("_Labelled", Counter, Histogram)


@functools.cache
def by_kind(metric: _Labelled, kind: str) -> _Labelled:
    """``metric.labels(kind=kind)``, looked up once: the lookup takes the metric's lock and
    builds a key on every call, several times per message on the live path."""
    return metric.labels(kind=kind)


def exposition() -> bytes:
    """The current figures in Prometheus's text format."""
    return generate_latest(REGISTRY)
