"""Benchmark: a 16-run sweep serially against a local Dask cluster of 2 worker processes.

The grid of issue 14: a shared Go 1.19 trace (binary-trees, imported from
``../shared/data/go1.19-traces``) x 4 GOGC (25, 50, 100, 200) x 2 policies (seed, modern)
x 2 replay modes (gc, free): 16 runs. ``--tile N`` replays the trace N times over (as
bench_replay.py does), for longer runs.

It reports, from one process:

* the serial sweep's wall time (``goheap sweep --serial``) and the sum of its runs' own
  wall times;
* the Dask sweep's wall time with the cluster's start (the workers load the compiled
  runtime), and without it (the cluster started first, then the same sweep on it);
* the speed-up of the grid (serial / Dask on a started cluster; goal >= 1.8x on 2 cores);
* Dask's overhead per run: each worker's busy time not spent inside a run (the wall
  time of the Dask sweep times the workers, less the runs' own wall times), per run,
  against the mean run time.

Run it on a quiet machine (see ``uptime``): it prints the load average before and after.

    .venv/bin/python bench/bench_sweep.py [--tile N] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_replay import tile  # noqa: E402

from goheap.sweep.cluster import DaskRunner  # noqa: E402
from goheap.sweep.driver import run_sweep  # noqa: E402
from goheap.sweep.spec import build_spec  # noqa: E402
from goheap.trace import import_log  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "go1.19-traces"
LOGS = ("binary-trees-10-gogc20.log.gz",)
GRID = {"gogc": ["25", "50", "100", "200"], "policy": ["seed", "modern"], "mode": ["gc", "free"]}


def run_walls(out: Path) -> list[float]:
    return [r["wall_s"] for r in pq.read_table(out / "results.parquet").to_pylist()]


def run_cpus(out: Path) -> list[float]:
    return [r["cpu_s"] for r in pq.read_table(out / "results.parquet").to_pylist()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tile", type=int, default=1, help="replay each trace N times over (longer runs)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        d = Path(tmp)
        traces = []
        for name in LOGS:
            path = d / name.replace(".log.gz", ".trace.npz")
            tile(import_log(SHARED / name), args.tile).save(path)
            traces.append(str(path))
        spec = build_spec(traces=traces, **GRID)
        n = len(spec.runs())

        t0 = time.perf_counter()
        serial = run_sweep(spec, d / "serial", serial=True)
        serial_s = time.perf_counter() - t0
        serial_runs = run_walls(d / "serial")
        serial_cpu = sum(run_cpus(d / "serial"))

        t0 = time.perf_counter()
        cold = run_sweep(spec, d / "cold", workers=args.workers)
        cold_s = time.perf_counter() - t0

        runner = DaskRunner(workers=args.workers)
        try:
            t0 = time.perf_counter()
            warm = run_sweep(spec, d / "warm", runner=runner)
            warm_s = time.perf_counter() - t0
        finally:
            runner.close()
        dask_runs = run_walls(d / "warm")
        dask_cpu = sum(run_cpus(d / "warm"))

    assert serial.ok == cold.ok == warm.ok == n, (serial, cold, warm)
    mean_serial = sum(serial_runs) / n
    mean_dask = sum(dask_runs) / n
    overhead = (warm_s * args.workers - sum(dask_runs)) / n
    shape = " x ".join(f"{len(v)} {k}" for k, v in {"trace": LOGS, **GRID}.items())
    print(f"grid: {n} runs ({shape}), tile {args.tile}")
    print(f"serial:                     {serial_s:7.2f} s  (runs: {sum(serial_runs):.2f} s, {mean_serial:.3f} s each; CPU {serial_cpu:.2f} s)")
    print(f"dask, cluster started too:  {cold_s:7.2f} s  ({args.workers} workers)")
    print(f"dask, on a started cluster: {warm_s:7.2f} s  (runs: {sum(dask_runs):.2f} s, {mean_dask:.3f} s each; CPU {dask_cpu:.2f} s)")
    print(f"speed-up: {serial_s / warm_s:.2f}x on a started cluster, {serial_s / cold_s:.2f}x with its start")
    print(f"dask overhead per run: {overhead * 1e3:.0f} ms ({overhead / mean_dask:.1%} of a run's {mean_dask * 1e3:.0f} ms)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
