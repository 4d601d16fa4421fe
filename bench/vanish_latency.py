"""Disappearance on an open screen: from a message's deadline to its bubble leaving the page.

Starts Iris with ``./iris run`` (fresh SQLite), two friends in headless Chromium; the sender
sends N messages with a 5-second timer, the receiver keeps the conversation open. A
MutationObserver on the receiver's page notes, for each bubble, the first moment it is hidden
(the page's countdown) or removed (the server's sweep, pushed to the tab), and the deadline
the page was given (``data-expires``). One browser, one clock.

Run: .venv/bin/python -m bench.vanish_latency [--messages 200]
"""

from __future__ import annotations

import argparse
import time

from bench.browser import served_app, two_friends
from bench.common import fmt, percentiles

OBSERVER = """
() => {
  window.__deadline = {}; window.__gone = {};
  const note = () => {
    const now = Date.now();
    const rows = document.querySelectorAll('.message-theirs');
    const present = new Set();
    for (const row of rows) {
      const text = row.querySelector('.message-body')?.textContent;
      const due = Number(row.querySelector('[data-expires]')?.dataset.expires || 0);
      if (!text) continue;
      present.add(text);
      if (due && !(text in window.__deadline)) window.__deadline[text] = due;
      if (row.style.display === 'none' && !(text in window.__gone)) window.__gone[text] = now;
    }
    for (const text of Object.keys(window.__deadline)) {
      if (!present.has(text) && !(text in window.__gone)) window.__gone[text] = now;
    }
  };
  new MutationObserver(note).observe(document.body,
    {childList: true, subtree: true, attributes: true, attributeFilter: ['style']});
}
"""


def run(messages: int) -> None:
    with served_app() as base, two_friends(base) as (ada, bob):
        bob.evaluate(OBSERVER)
        ada.get_by_label("Disappearing timer").click()
        ada.get_by_role("option", name="Custom…").click()
        ada.get_by_label("Custom timer").fill("5s")
        composer = ada.get_by_label("Message", exact=True)
        for i in range(messages):
            composer.fill(f"v{i:05d}")
            composer.press("Enter")
            # The next send waits for this one to be on the sender's own screen.
            ada.locator(".message-mine .message-body", has_text=f"v{i:05d}").wait_for(
                timeout=30_000
            )
        end = time.monotonic() + 120
        while time.monotonic() < end:
            if bob.evaluate("Object.keys(window.__gone).length") >= messages:
                break
            time.sleep(0.2)
        deadline = bob.evaluate("window.__deadline")
        gone = bob.evaluate("window.__gone")
    lags = [gone[t] - deadline[t] for t in deadline if t in gone]
    print(f"vanish on the friend's open screen, {len(lags)} of {messages} messages seen:")
    print(f"  deadline -> bubble hidden or removed: {fmt(percentiles([float(x) for x in lags]))}")
    print(f"  earliest relative to deadline: {min(lags)} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    run(args.messages)


if __name__ == "__main__":
    main()
