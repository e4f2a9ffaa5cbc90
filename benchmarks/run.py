"""Run the benchmark workloads for every driver on one throwaway server and print ratios.

    pip install -e '.[bench]' && python -m benchmarks.run [--runs 5] [--quick]

The server is started by ``trio_pg.testing`` (fsync off). Drivers run interleaved
(each round runs every driver once, in rotating order) after a warm-up round; the table
shows the median operations per second and the ratio to asyncpg on uvloop. Every run's
result is checked, so a driver that skips work fails instead of looking fast.

Workloads landed so far: W1 (sequential ``SELECT $1::int4``) and W3 (``SELECT *`` of
500,000 rows of int4, int8, float8, text, timestamptz, bool, numeric). The others of the
benchmark issue are reported as not yet implemented.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from collections.abc import Callable

from benchmarks.drivers import DRIVERS, W3_SETUP, Params, Timed, w1_expected, w3_expected
from trio_pg.testing import PostgresServer

BASELINE = "asyncpg-uvloop"
PENDING = ("W2", "W2b", "W4", "W5", "W6", "W7")


def _psql(server: PostgresServer, sql: str) -> None:
    subprocess.run(
        [str(server.bindir / "psql"), "-q", "-v", "ON_ERROR_STOP=1", server.dsn(), "-c", sql],
        check=True,
        env={"PGOPTIONS": "-c client_min_messages=warning", "PATH": "/usr/bin:/bin"},
    )


def _measure(fn: Callable[[Params, int], Timed], params: Params, n: int, expected: int) -> float:
    got, elapsed = fn(params, n)
    if got != expected:
        raise SystemExit(f"wrong result from {fn}: {got} != {expected}")
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="measured rounds (median taken)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args()
    sizes = {"W1": 2_000 if args.quick else 20_000, "W3": 20_000 if args.quick else 500_000}
    with PostgresServer() as server:
        params: Params = server.connect_params()
        _psql(server, W3_SETUP.format(n=sizes["W3"]))
        expected = {"W1": w1_expected(sizes["W1"]), "W3": w3_expected(sizes["W3"])}
        names = list(DRIVERS)
        results: dict[tuple[str, str], list[float]] = {}
        for workload in ("W1", "W3"):
            for round_no in range(args.runs + 1):  # round 0 is the warm-up
                order = names[round_no % len(names) :] + names[: round_no % len(names)]
                for name in order:
                    rate = _measure(
                        DRIVERS[name][workload], params, sizes[workload], expected[workload]
                    )
                    if round_no:
                        results.setdefault((workload, name), []).append(rate)
        print(
            f"PostgreSQL {'.'.join(map(str, server.version))}, Python {sys.version.split()[0]}, "
            f"median of {args.runs} runs"
        )
        print(f"{'workload':<9}{'driver':<18}{'ops/s':>12}{'vs ' + BASELINE:>22}")
        for workload in ("W1", "W3"):
            base = statistics.median(results[(workload, BASELINE)])
            for name in names:
                rate = statistics.median(results[(workload, name)])
                print(f"{workload:<9}{name:<18}{rate:>12,.0f}{rate / base:>22.2f}")
        for workload in PENDING:
            print(f"{workload:<9}not implemented yet (its API has not landed)")


if __name__ == "__main__":
    main()
