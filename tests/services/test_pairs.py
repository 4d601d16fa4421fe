"""Pairs of users as stored (low, high), and the other person of a pair."""

from __future__ import annotations

from iris_reflex.services import pairs


def test_pair_orders_two_ids_low_then_high():
    assert pairs.ordered(7, 3) == (3, 7)
    assert pairs.ordered(3, 7) == (3, 7)


def test_the_other_person_is_whichever_id_is_not_me():
    assert pairs.other(3, 7, me=3) == 7
    assert pairs.other(3, 7, me=7) == 3
    assert pairs.other(9, 2, me=9) == 2
