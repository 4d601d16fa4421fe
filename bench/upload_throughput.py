"""Upload throughput for a 50 MB file, as a person and as a script send it.

Starts ``./iris run`` (SQLite unless ``--database-url``), signs two friends up in headless
Chromium, then times, for ``--rounds`` rounds:
- browser: the composer's tray uploading a 50 MB file (XMLHttpRequest with progress, cookie
  auth) from ``irisUploads.add`` until the tray shows it done;
- http: the same bytes streamed with httpx to ``POST /api/uploads``;
- a 24-megapixel JPEG through the browser, where the server also re-encodes it without
  metadata and makes its thumbnail.
Each upload is cancelled again afterwards, so the quota never fills. Prints MB/s.

    .venv/bin/python -m bench.upload_throughput [--rounds 5] [--database-url URL]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time

import httpx
from PIL import Image

from bench.browser import served_app, two_friends

SIZE = 50 * 1024 * 1024

ADD_FILE_JS = """
async ([name, size, kind]) => {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
  window.__benchFile = new File([bytes], name, {type: kind});
}
"""
START_JS = """
() => { window.__benchStart = performance.now(); window.irisUploads.add([window.__benchFile]); }
"""
DONE_JS = """
(name) => { const d = document.querySelector(`.tray-item.tray-done[data-name="${name}"]`);
  return d ? performance.now() - window.__benchStart : null; }
"""


def _big_jpeg() -> bytes:
    noise = Image.frombytes("RGB", (6000, 4000), os.urandom(6000 * 4000 * 3))
    out = io.BytesIO()
    noise.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _browser_upload(page, name: str, size: int, kind: str, data: bytes | None = None) -> float:  # type: ignore[no-untyped-def]
    if data is None:
        page.evaluate(ADD_FILE_JS, [name, size, kind])
    else:
        page.evaluate(
            "([name, b64, kind]) => { const raw = atob(b64); const a = new Uint8Array(raw.length);"
            " for (let i = 0; i < raw.length; i++) a[i] = raw.charCodeAt(i);"
            " window.__benchFile = new File([a], name, {type: kind}); }",
            [name, __import__("base64").b64encode(data).decode(), kind],
        )
    page.evaluate(START_JS)
    page.wait_for_function(DONE_JS, arg=name, timeout=600_000, polling=10)
    elapsed_ms = page.evaluate(DONE_JS, name)
    page.get_by_role("button", name=f"Remove {name}").click()
    return elapsed_ms / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with served_app(args.database_url) as base, two_friends(base) as (ada, _bob):
        cookie = next(c for c in ada.context.cookies() if c["name"] == "iris_session")
        browser_s, http_s, jpeg_s = [], [], []
        payload = os.urandom(SIZE)
        jpeg = _big_jpeg()
        with httpx.Client(base_url=base, cookies={"iris_session": cookie["value"]}) as client:
            for round_ in range(args.rounds):
                browser_s.append(
                    _browser_upload(ada, f"big-{round_}.bin", SIZE, "application/octet-stream")
                )
                started = time.perf_counter()
                response = client.post(
                    "/api/uploads",
                    params={"name": f"http-{round_}.bin"},
                    content=iter([payload[i : i + (1 << 20)] for i in range(0, SIZE, 1 << 20)]),
                    timeout=600,
                )
                http_s.append(time.perf_counter() - started)
                assert response.status_code == 201, response.text
                client.delete(f"/api/uploads/{response.json()['id']}")
                jpeg_s.append(
                    _browser_upload(ada, f"photo-{round_}.jpg", len(jpeg), "image/jpeg", jpeg)
                )
        mb = SIZE / (1024 * 1024)
        print(f"50 MB upload, {args.rounds} rounds, database {args.database_url or 'SQLite'}")
        for label, samples in (
            ("browser (XHR, cookie)", browser_s),
            ("http (httpx stream)", http_s),
        ):
            print(
                f"  {label:24} median {statistics.median(samples):6.2f} s"
                f" = {mb / statistics.median(samples):6.1f} MB/s"
                f"  (best {mb / min(samples):6.1f} MB/s)"
            )
        print(
            f"  24 MP JPEG ({len(jpeg) / 1e6:.1f} MB) via browser, cleaned + thumbnail:"
            f" median {statistics.median(jpeg_s):.2f} s"
        )


if __name__ == "__main__":
    main()
