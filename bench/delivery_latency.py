"""Live delivery latency: from a sender pressing Enter to the message on the friend's screen.

Starts Iris the way the README does (``./iris run``, production build, fresh SQLite or the
PostgreSQL you name; one worker, or several with ``IRIS_REDIS_URL`` set), opens two headless
Chromium tabs as two friends, and sends N messages one after another. The receiver's page
records, with a MutationObserver, the moment each message's bubble appears; the sender's page
records the moment before Enter. Both tabs live in one browser on one machine, so
``Date.now()`` is one clock.

Run: .venv/bin/python -m bench.delivery_latency [--messages 500] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import time

from bench.browser import served_app, two_friends, wait
from bench.common import fmt, percentiles

OBSERVER = """
() => {
  window.__arrivals = {};
  const seen = (node) => {
    if (!(node instanceof Element)) return;
    const bodies = node.matches('.message-theirs .message-body')
      ? [node] : node.querySelectorAll('.message-theirs .message-body');
    for (const b of bodies) {
      const text = b.textContent;
      if (text && !(text in window.__arrivals)) window.__arrivals[text] = Date.now();
    }
  };
  new MutationObserver((records) => {
    for (const r of records) {
      for (const n of r.addedNodes) seen(n);
      if (r.type === 'characterData') seen(r.target.parentElement);
    }
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}
"""


def run(messages: int, database_url: str | None) -> None:
    with served_app(database_url) as base, two_friends(base) as (ada, bob):
        bob.evaluate(OBSERVER)
        composer = ada.get_by_label("Message", exact=True)
        latencies: list[float] = []
        started = time.perf_counter()
        for i in range(messages):
            text = f"m{i:05d}"
            composer.fill(text)
            sent_at = ada.evaluate("Date.now()")
            composer.press("Enter")
            wait(
                lambda t=text: bob.evaluate(f"'{t}' in window.__arrivals"),
                30,
                f"message {text} to arrive",
            )
            latencies.append(bob.evaluate(f"window.__arrivals['{text}']") - sent_at)
        elapsed = time.perf_counter() - started
    kind = "PostgreSQL" if database_url and "postgres" in database_url else "SQLite"
    workers = (
        f"Redis state, {os.environ.get('GRANIAN_WORKERS', 'default')} workers"
        if os.environ.get("IRIS_REDIS_URL")
        else "one worker"
    )
    print(f"live delivery, {messages} messages, {workers}, {kind}:")
    print(f"  send -> friend's screen: {fmt(percentiles([float(x) for x in latencies]))}")
    print(f"  sequential rate: {messages / elapsed:.1f} messages/s (each waits for the last)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = parser.parse_args()
    run(args.messages, args.database_url)


if __name__ == "__main__":
    main()
