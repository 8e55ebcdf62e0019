"""Benchmark: replaying Go allocation traces on goheap (goheap.trace.replay), and importing them.

For each log (default: the shared Go 1.19 traces in ``../shared/data/go1.19-traces``
beside the repository, or the paths given on the command line) this measures:

* ``import``: MB/s of uncompressed log for :func:`goheap.trace.import_log` and for the
  streaming :func:`goheap.trace.import_log_to_file` (the timers of
  ``bench_trace_import.py``);
* ``plan``: events/s of the compiled pre-pass that checks the trace and maps its
  addresses to root slots (:meth:`ReplayPlan.build`);
* ``replay``: events/s of the replay loop (the compiled loop over the events, in chunks,
  gctrace and collections included: ``ReplayResult.seconds``), for each mode (``gc``,
  ``free``) and GOGC (100, the seed's default; 20, what the traces were recorded with;
  off, the allocator alone), and events/s end to end (plan, a fresh heap, the loop,
  final statistics).

Each figure is the best of ``--repeat`` runs (default 5). ``--tile N`` replays each trace
N times over (each copy at its own addresses, so every copy's survivors stay live) for
longer, steadier runs. The shared traces are short (50 to 220 thousand events), so their
figures include the fixed costs of a replay: expect the first collections, which come
every few hundred allocations on the seed's pacing, to weigh on them.

Usage::

    .venv/bin/python bench/bench_replay.py [--repeat N] [--tile N] [--no-import] [LOG ...]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_trace_import import default_logs, time_import, time_import_to_file  # noqa: E402

from goheap.trace import KIND_GC, Trace  # noqa: E402
from goheap.trace.replay import ReplayPlan, replay  # noqa: E402

GOGCS = (100, 20, -1)


def tile(trace: Trace, n: int) -> Trace:
    """``trace`` n times in a row, copy k at addresses moved up by k << 40."""
    if n <= 1:
        return trace
    offsets = np.repeat(np.arange(n, dtype=np.uint64) << np.uint64(40), len(trace))
    kind = np.tile(trace.kind, n)
    addr = np.tile(trace.addr, n) + np.where(kind == KIND_GC, np.uint64(0), offsets)
    return Trace(
        kind=kind,
        addr=addr,
        size=np.tile(trace.size, n),
        type_id=np.tile(trace.type_id, n),
        func_id=np.tile(trace.func_id, n),
        types=trace.types,
        funcs=trace.funcs,
        meta={"source": f"{trace.meta.get('source')} x{n}"},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="*", type=Path, help="logs to replay (default: shared traces)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (best is kept)")
    parser.add_argument("--tile", type=int, default=1, help="replay each trace this many times over")
    parser.add_argument("--no-import", action="store_true", help="skip the import timings")
    args = parser.parse_args(argv)

    logs = args.logs or default_logs()
    if not logs:
        print("no logs given and none found beside the repository", file=sys.stderr)
        return 1

    for path in logs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import_s, trace = min((time_import(path) for _ in range(args.repeat)), key=lambda r: r[0])
            mb = trace.meta["log_bytes"] / 1e6
            if not args.no_import:
                file_s = min(time_import_to_file(path) for _ in range(args.repeat))
        trace = tile(trace, args.tile)
        n = len(trace)
        print(f"{path.name}: {n:,} events" + (f" ({args.tile} copies)" if args.tile > 1 else ""))
        if not args.no_import:
            print(f"  import         {mb / import_s:8.0f} MB/s into memory, {mb / file_s:.0f} MB/s into a file")

        ReplayPlan.build(trace)  # load the compiled code before timing
        plan_s = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            plan = ReplayPlan.build(trace)
            plan_s = min(plan_s, time.perf_counter() - start)
        print(f"  plan           {n / plan_s / 1e6:8.1f} M events/s")
        print(f"  {'replay':<8} {'GOGC':>5} {'loop M ev/s':>12} {'total M ev/s':>13} {'NumGC':>6}")
        for mode in ("gc", "free"):
            for gogc in GOGCS:
                loop_s = total_s = float("inf")
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    result = replay(trace, mode=mode, gogc=gogc)
                    total_s = min(total_s, time.perf_counter() - start)
                    loop_s = min(loop_s, result.seconds)
                label = "off" if gogc < 0 else str(gogc)
                print(
                    f"  {mode:<8} {label:>5} {n / loop_s / 1e6:12.1f} {n / total_s / 1e6:13.1f} "
                    f"{result.num_gc:>6}"
                )
        del plan
    return 0


if __name__ == "__main__":
    sys.exit(main())
