"""The worker's garbage collector is tuned once at start-up (``startup.tune_garbage_collection``):
the figures it buys are ``bench.load_tabs``'s; this checks it does what it says."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from iris_reflex import startup


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_start_up_objects_are_frozen_and_young_collections_run_less_often(restored_gc):
    kept = object.__new__(type("StartUpObject", (), {}))  # tracked by the collector
    assert gc.is_tracked(kept)
    _young, middle, old = gc.get_threshold()

    startup.tune_garbage_collection()

    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (startup.YOUNG_COLLECTION_EVERY, middle, old)
    # Frozen objects are no longer in any generation a collection walks.
    assert not any(obj is kept for obj in gc.get_objects())
