"""Costs of signing in: argon2 login latency and per-event token verification.

Every protected Reflex event and API call verifies the JWT *and* loads its session row, so
verification throughput bounds how many events a worker can authorize per second.

Run: .venv/bin/python -m bench.auth_bench [--logins 30] [--verifications 2000]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("IRIS_JWT_SECRET", "bench-secret-" + "x" * 40)

from sqlmodel import Session  # noqa: E402

from bench.common import fmt, percentiles, scratch_database, timed  # noqa: E402
from iris_reflex.db import engine_for  # noqa: E402
from iris_reflex.services import auth, users  # noqa: E402


def run(kind: str, logins: int, verifications: int) -> None:
    with scratch_database(kind) as url, Session(engine_for(url)) as db:
        users.check_register(db, username="bench", password="correct horse battery", ip="bench")
        login_ms = [
            timed(
                lambda: auth.login(
                    db, username="bench", password="correct horse battery", ip="127.0.0.1"
                )
            )
            for _ in range(logins)
        ]
        token = auth.login(
            db, username="bench", password="correct horse battery", ip="127.0.0.1"
        ).token
        verify_ms = [timed(lambda: auth.authenticate(db, token)) for _ in range(verifications)]
        start = time.perf_counter()
        for _ in range(verifications):
            auth.authenticate(db, token)
        rate = verifications / (time.perf_counter() - start)
    print(f"[{kind}] login (argon2 + session row), n={logins}:   {fmt(percentiles(login_ms))}")
    print(f"[{kind}] verify token + session, n={verifications}: {fmt(percentiles(verify_ms))}")
    print(f"[{kind}] verifications per second (one connection): {rate:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logins", type=int, default=30)
    parser.add_argument("--verifications", type=int, default=2000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    for kind in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        run(kind, args.logins, args.verifications)


if __name__ == "__main__":
    main()
