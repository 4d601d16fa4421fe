"""Two users as the tables store them: friendships and conversations keep ``low < high``.

Written once so every lookup orders the pair the same way (the unique constraints rely on it)
and "the other person" is computed the same way everywhere; a write that collides on those
constraints (friend requests, blocks) retries, and gives up, the same way too.
"""

from __future__ import annotations

# A write that keeps colliding with concurrent changes gives up after this many tries.
ATTEMPTS = 3
TRY_AGAIN = "Someone else changed this at the same moment. Please try again."


def ordered(a: int, b: int) -> tuple[int, int]:
    """The two ids as stored: ``(low, high)``."""
    return (a, b) if a < b else (b, a)


def other(first: int, second: int, *, me: int) -> int:
    """Of two ids (a stored pair, or a message's sender and recipient), the one that is not
    ``me``; the caller has checked that ``me`` is one of them."""
    return second if first == me else first
