"""Benchmark: speed of importing Go allocfreetrace logs (goheap.trace.import_log).

For each log (default: the shared Go 1.19 traces in ``../shared/data/go1.19-traces``
beside the repository, or the paths given on the command line) this measures, in the same
run:

* ``read``: a plain ``for line in f: pass`` over the same file opened the same way
  (text mode, gzip-decompressed if needed), the floor any line-based importer pays;
* ``import``: :func:`goheap.trace.import_log` (into memory);
* ``to file``: :func:`goheap.trace.import_log_to_file` (what ``goheap trace import``
  runs: streamed into a trace file in flat memory);

and prints MB/s of uncompressed log and events/s, and the ratio import/read time. Each
figure is the best of ``--repeat`` runs (default 3). ``bench_replay.py`` reuses
:func:`time_import` and :func:`time_import_to_file`.

Usage::

    .venv/bin/python bench/bench_trace_import.py [--repeat N] [LOG ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from goheap.trace import import_log, import_log_to_file, open_log

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "../shared/data/go1.19-traces"


def time_read(path: Path) -> float:
    """Seconds for a bare line-by-line read of the (decompressed) log."""
    start = time.perf_counter()
    with open_log(path) as f:
        for _line in f:
            pass
    return time.perf_counter() - start


def time_import(path: Path):
    start = time.perf_counter()
    trace = import_log(path)
    return time.perf_counter() - start, trace


def time_import_to_file(path: Path) -> float:
    """Seconds for a streaming import into a trace file (in a temporary directory)."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        import_log_to_file(path, Path(tmp) / "t.trace.npz")
        return time.perf_counter() - start


def default_logs() -> list[Path]:
    return sorted(DEFAULT_DIR.resolve().glob("*.log*"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="*", type=Path, help="logs to import (default: shared traces)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best is kept)")
    args = parser.parse_args(argv)

    logs = args.logs or default_logs()
    if not logs:
        print(f"no logs given and none found in {DEFAULT_DIR.resolve()}", file=sys.stderr)
        return 1

    header = (
        f"{'log':<34} {'MB':>7} {'events':>9} {'read s':>7} {'read MB/s':>9} "
        f"{'import s':>8} {'import MB/s':>11} {'events/s':>10} {'import/read':>11} "
        f"{'to file MB/s':>12}"
    )
    print(header)
    print("-" * len(header))
    for path in logs:
        read_s = min(time_read(path) for _ in range(args.repeat))
        import_s, trace = float("inf"), None
        for _ in range(args.repeat):
            s, trace = time_import(path)
            import_s = min(import_s, s)
        file_s = min(time_import_to_file(path) for _ in range(args.repeat))
        mb = trace.meta["log_bytes"] / 1e6
        print(
            f"{path.name:<34} {mb:>7.1f} {len(trace):>9,} {read_s:>7.2f} {mb / read_s:>9.0f} "
            f"{import_s:>8.2f} {mb / import_s:>11.0f} {len(trace) / import_s:>10,.0f} "
            f"{import_s / read_s:>10.2f}x {mb / file_s:>12.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
