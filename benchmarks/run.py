"""Run the benchmark workloads for every driver on one throwaway server and print ratios.

    pip install -e '.[bench]' && python -m benchmarks.run [--runs 5] [--quick] [--only W1,W3]

The server is started by ``trio_pg.testing`` (fsync off). Drivers run interleaved
(each round runs every driver once, in rotating order) after a warm-up round; the table
shows the median operations per second and the ratio to asyncpg on uvloop. Every run's
result is checked, so a driver that skips work fails instead of looking fast.

Workloads live in the modules of :data:`MODULES`, each exporting ``WORKLOADS``; a
workload of the benchmark issue whose module is missing is reported as not implemented.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys

import trio

import trio_pg
from benchmarks.workload import Driver, Params, Workload
from trio_pg.testing import PostgresServer

BASELINE = "asyncpg-uvloop"
ALL_IDS = ("W1", "W2", "W2b", "W3", "W4", "W5", "W6", "W7")
MODULES = (
    "benchmarks.core",
    "benchmarks.pipelines",
    "benchmarks.streaming",
    "benchmarks.notifications",
    "benchmarks.pool",
)


def load_workloads() -> dict[str, Workload]:
    """Every workload whose module exists, by id."""
    found: dict[str, Workload] = {}
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        for workload in module.WORKLOADS:
            found[workload.id] = workload
    return found


def _setup(params: Params, sql: str) -> None:
    """Run a workload's setup SQL (through trio_pg: no psql needed)."""

    async def run() -> None:
        async with trio_pg.open_connection(
            **params, options="-c client_min_messages=warning"
        ) as conn:
            await conn.execute(sql)

    trio.run(run)


def _measure(fn: Driver, params: Params, n: int, expected: int) -> float:
    got, elapsed = fn(params, n)
    if got != expected:
        raise SystemExit(f"wrong result from {fn}: {got} != {expected}")
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="measured rounds (median taken)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--only", default="", help="comma-separated workload ids")
    args = parser.parse_args()
    workloads = load_workloads()
    wanted = [w for w in ALL_IDS if not args.only or w in args.only.split(",")]
    rows: list[str] = []
    with PostgresServer() as server:
        params: Params = server.connect_params()
        for wid in wanted:
            workload = workloads.get(wid)
            if workload is None:
                rows.append(f"{wid:<5}not implemented yet (its API has not landed)")
                continue
            n = workload.quick_size if args.quick else workload.size
            if workload.setup_sql:
                _setup(params, workload.setup_sql.format(n=n))
            expected = workload.expected(n)
            names = list(workload.drivers)
            rates: dict[str, list[float]] = {name: [] for name in names}
            for round_no in range(args.runs + 1):  # round 0 is the warm-up
                shift = round_no % len(names)
                for name in names[shift:] + names[:shift]:
                    rate = _measure(workload.drivers[name], params, n, expected)
                    if round_no:
                        rates[name].append(rate)
            base = statistics.median(rates[BASELINE])
            for name in names:
                rate = statistics.median(rates[name])
                unit = f"{workload.unit}/s"
                rows.append(f"{wid:<5}{name:<18}{rate:>14,.0f} {unit:<10}{rate / base:>8.2f}")
        version = ".".join(map(str, server.version))
    print(f"PostgreSQL {version}, Python {sys.version.split()[0]}, median of {args.runs} runs")
    print(f"{'id':<5}{'driver':<18}{'rate':>14} {'':<10}{'vs ' + BASELINE:>8}")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
