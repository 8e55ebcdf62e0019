"""Benchmark: total GC pause of binary-trees N=16 at GOGC=100, next to the seed's.

The seed runtime's PauseTotalNs for this run was 283 ms on this kind of machine (the
issue's figure: the 2013 runtime built from the seed commit, GOMAXPROCS=1). This runs
goheap's port ``--rounds`` times in this process (compiled code warmed up first) and
prints the median PauseTotalNs, NumGC and the mean pause, and the ratio to the seed's.

Usage::

    .venv/bin/python bench/bench_gc_pause.py [--rounds N] [--n DEPTH]
"""

from __future__ import annotations

import argparse
import io
import statistics

from goheap.workloads import run_workload

SEED_PAUSE_TOTAL_MS = 283.0  # binarytrees 16, GOGC=100, the seed runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=16)
    opts = parser.parse_args()
    run_workload("binarytrees", ["10"], gcpercent=100, gctrace=0, trace_stream=io.StringIO())  # warm up
    totals, numgc = [], 0
    for _ in range(opts.rounds):
        result = run_workload("binarytrees", [str(opts.n)], gcpercent=100, gctrace=0, trace_stream=io.StringIO())
        totals.append(result.memstats.pause_total_ns / 1e6)
        numgc = result.memstats.num_gc
    total = statistics.median(totals)
    print(f"binarytrees {opts.n}, GOGC=100: PauseTotalNs median {total:.0f} ms over {opts.rounds} runs "
          f"(min {min(totals):.0f}, max {max(totals):.0f}); NumGC {numgc}, mean pause {total / numgc:.2f} ms")
    if opts.n == 16:
        print(f"seed runtime: {SEED_PAUSE_TOTAL_MS:.0f} ms; ratio goheap/seed {total / SEED_PAUSE_TOTAL_MS:.2f}")


if __name__ == "__main__":
    main()
