"""What sealing tab state costs per state write and read (``iris_reflex/state/sealed.py``).

With Redis (several workers) or Reflex's disk mode, every event that changes a state makes
Reflex pickle it (``BaseState._serialize``) and a later event on another worker unpickle it.
Sealed states add one AES-256-GCM encryption of their fields to the write and a decryption
to the read. This script fills the open conversation's ``MessagesState`` with a full page of
messages (bodies of 40 to 400 characters, every fifth with a file) and the sidebar with its
rows, then times, per call (median of several rounds):

- Reflex's write as Iris does it now (``_serialize``: pickle + seal) against the same fields
  pickled without a seal (what the write cost before);
- the read (``_deserialize``: unpickle + unseal) against an unsealed unpickle;
- the sizes, sealed and not;
- and the seal's own part alone: AES-GCM encryption and decryption of the pickled fields
  (the steadiest figure on a busy machine; the rest is pickling, done before sealing too).

Memory mode (one worker) never pickles: there the cost is nil (tests/state/test_sealed.py).

Run: .venv/bin/python -m bench.seal_cost [--messages 50] [--rows 20] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import pickle  # noqa: S403 - our own payloads
import random
import statistics
import string
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

os.environ.setdefault("IRIS_JWT_SECRET", "bench-secret-" + "x" * 40)

import reflex as rx  # noqa: E402
from reflex.state import BaseState  # noqa: E402

import iris_reflex.iris_reflex  # noqa: E402, F401  (registers every state on rx.State)
from iris_reflex.services.attachments import AttachmentView  # noqa: E402
from iris_reflex.services.message_views import MessageView  # noqa: E402
from iris_reflex.state import rows  # noqa: E402
from iris_reflex.state import sealed as seal  # noqa: E402
from iris_reflex.state.conversation import MessagesState  # noqa: E402
from iris_reflex.state.sidebar import SidebarState  # noqa: E402


def _text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters + "      ") for _ in range(n))


def _page(n: int, rng: random.Random) -> list[MessageView]:
    start = datetime.now(UTC) - timedelta(hours=2)
    views = []
    for i in range(1, n + 1):
        files: tuple[AttachmentView, ...] = ()
        if i % 5 == 0:
            name = f"{_text(rng, 12).strip() or 'file'}.jpg"
            files = (AttachmentView(i, i, name, "image/jpeg", "image", 120_000, 800, 600, True),)
        views.append(
            MessageView(
                i,
                1,
                1 + i % 2,
                2 - i % 2,
                "text",
                _text(rng, rng.randint(40, 400)),
                start + timedelta(minutes=i),
                None,
                None,
                None,
                None,
                files,
            )
        )
    return views


def _filled(messages: int, sidebar_rows: int) -> tuple[Any, Any]:
    rng = random.Random(13)  # noqa: S311 - text to time, not a secret
    root = rx.State(_reflex_internal_init=True)
    page = root.get_substate(MessagesState.get_full_name().split(".")[1:])
    sidebar = root.get_substate(SidebarState.get_full_name().split(".")[1:])
    page._user_id = 1
    page._views = _page(messages, rng)
    page._show()
    sidebar.chat_rows = [
        rows.ConversationRow(
            username=f"friend{i}", display_name=f"Friend {i}", preview=_text(rng, 60)
        )
        for i in range(sidebar_rows)
    ]
    sidebar._conversations = list(sidebar.chat_rows)
    return page, sidebar


def _per_call_us(fn: Callable[[], object], rounds: int) -> float:
    """Median over ``rounds`` of the mean time of one call, in microseconds."""
    fn()
    loops = 1
    while True:  # about 0.2 s a round
        began = time.perf_counter()
        for _ in range(loops):
            fn()
        if time.perf_counter() - began > 0.2:
            break
        loops *= 2
    means = []
    for _ in range(rounds):
        began = time.perf_counter()
        for _ in range(loops):
            fn()
        means.append((time.perf_counter() - began) / loops * 1e6)
    return statistics.median(means)


def _measure(state: Any, rounds: int) -> dict[str, float]:
    schema = state._to_schema()
    own = dict(BaseState.__getstate__(state))  # the fields an unsealed state pickles
    plain = pickle.dumps((schema, own))
    sealed = state._serialize()
    inner = pickle.dumps(own, protocol=pickle.HIGHEST_PROTOCOL)
    cipher, nonce, label = seal._cipher(), os.urandom(12), state.get_full_name().encode()
    encrypted = cipher.encrypt(nonce, inner, label)
    return {
        "encrypt": _per_call_us(lambda: cipher.encrypt(nonce, inner, label), rounds),
        "decrypt": _per_call_us(lambda: cipher.decrypt(nonce, encrypted, label), rounds),
        "write_sealed": _per_call_us(state._serialize, rounds),
        "write_plain": _per_call_us(lambda: pickle.dumps((schema, own)), rounds),
        "read_sealed": _per_call_us(lambda: BaseState._deserialize(sealed), rounds),
        "read_plain": _per_call_us(lambda: pickle.loads(plain), rounds),  # noqa: S301
        "bytes_sealed": len(sealed),
        "bytes_plain": len(plain),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    page, sidebar = _filled(args.messages, args.rows)
    print(f"{'state':<34}{'write µs':>18}{'read µs':>18}{'bytes':>18}{'AES-GCM µs':>18}")
    print(f"{'':<34}" + f"{'sealed / plain':>18}" * 3 + f"{'enc / dec':>18}")
    for label, state in (
        (f"MessagesState, {args.messages} messages", page),
        (f"SidebarState, {args.rows} rows", sidebar),
    ):
        m = _measure(state, args.rounds)
        print(
            f"{label:<34}"
            f"{m['write_sealed']:>9.1f} / {m['write_plain']:<6.1f}"
            f"{m['read_sealed']:>9.1f} / {m['read_plain']:<6.1f}"
            f"{m['bytes_sealed']:>9,} / {m['bytes_plain']:<6,}"
            f"{m['encrypt']:>9.1f} / {m['decrypt']:<6.1f}"
        )
    print(
        "(plain: the same fields pickled without a seal, as before; AES-GCM: the seal's own"
        " encryption and decryption of the pickled fields; medians per call)"
    )


if __name__ == "__main__":
    main()
