"""Benchmark: speed of importing recorded Go programs (allocfreetrace logs, execution traces).

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

Execution traces (the shared Go 1.27 traces in ``../shared/data/go1.27-traces``) are
measured the same way against a bare read of the decompressed bytes (``read``):
``import`` is :func:`goheap.trace.import_exectrace` and ``to file``
:func:`goheap.trace.import_exectrace_to_file`, after one warm-up import (the compiled
decoder loads from numba's cache once per process).

``--big MB`` also writes a trace of that many MB by repeating the generations of the
largest shared trace (renumbered, later in time; a valid trace whose heap repeats) and
imports it to a file in a fresh process, twice: the whole trace and its first quarter;
the peak RSS of the two shows whether memory stays flat as the trace grows.

Usage::

    .venv/bin/python bench/bench_trace_import.py [--repeat N] [--big MB] [LOG ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from goheap.trace import import_exectrace, import_exectrace_to_file, import_log, import_log_to_file, open_log

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "../shared/data/go1.19-traces"
EXECTRACE_DIR = Path(__file__).resolve().parents[1] / "../shared/data/go1.27-traces"


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


def time_exectrace(path: Path, repeat: int) -> None:
    """One line of figures for an execution trace (see the module docstring)."""
    import gzip

    start = time.perf_counter()
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    read_s = time.perf_counter() - start
    import_exectrace(path)  # warm-up: the compiled decoder loads once
    import_s, trace = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        trace = import_exectrace(path)
        import_s = min(import_s, time.perf_counter() - start)
    file_s = float("inf")
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            import_exectrace_to_file(path, Path(tmp) / "t.trace.npz")
            file_s = min(file_s, time.perf_counter() - start)
    mb = len(raw) / 1e6
    print(
        f"{path.name:<34} {mb:>7.1f} {len(trace):>9,} {read_s:>7.2f} {mb / read_s:>9.0f} "
        f"{import_s:>8.2f} {mb / import_s:>11.0f} {len(trace) / import_s:>10,.0f} "
        f"{import_s / read_s:>10.2f}x {mb / file_s:>12.0f}"
    )


def write_big_trace(source: Path, out: Path, megabytes: int) -> int:
    """A trace of about ``megabytes`` MB: the header of ``source``, then its generations
    again and again, renumbered and shifted in time. Returns the bytes written."""
    from goheap.trace.exectrace import format as F
    from goheap.trace.exectrace.reader import _Input, read_generations

    def uvarint(v: int) -> bytes:
        b = bytearray()
        while True:
            byte, v = v & 0x7F, v >> 7
            b.append(byte | (0x80 if v else 0))
            if not v:
                return bytes(b)

    inp = _Input(source)
    head = inp.take(F.HEADER_SIZE)
    version = F.parse_header(head)
    gens = list(read_generations(inp, version))
    inp.close()
    t0 = min(b.ts for g in gens for b in g.events)
    span = max(b.ts for g in gens for b in g.events) - t0 + 1
    raw_batches = []
    for g in gens:
        batches = [*g.sync, *g.experimental, *g.events]
        raw_batches.append(batches)
    written = 0
    gen_no = 0
    with open(out, "wb") as f:
        f.write(head)
        written += len(head)
        rep = 0
        while written < megabytes * 1_000_000:
            for batches in raw_batches:
                gen_no += 1
                for b in batches:
                    kind = bytes([F.EV_EXPERIMENTAL_BATCH, b.exp]) if b.exp else bytes([F.EV_EVENT_BATCH])
                    hdr = kind + uvarint(gen_no) + uvarint(b.m) + uvarint(b.ts + rep * span) + uvarint(len(b.data))
                    f.write(hdr)
                    f.write(b.data)
                    written += len(hdr) + len(b.data)
                if version >= 26:
                    f.write(bytes([F.EV_END_OF_GENERATION]))
                    written += 1
            rep += 1
    return written


def big_trace_rss(megabytes: int) -> None:
    """Import a big trace and its first quarter in fresh processes; print time and peak RSS."""
    import subprocess

    sources = sorted(EXECTRACE_DIR.resolve().glob("*.trace.gz"), key=lambda p: p.stat().st_size)
    if not sources:
        print(f"--big needs a trace in {EXECTRACE_DIR.resolve()}", file=sys.stderr)
        return
    script = (
        "import resource, sys, time\n"
        "from goheap.trace import import_exectrace_to_file\n"
        "start = time.perf_counter()\n"
        "r = import_exectrace_to_file(sys.argv[1], sys.argv[2])\n"
        "print(r.meta['events'], time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        for mb in (megabytes // 4, megabytes):
            trace = Path(tmp) / f"big-{mb}.trace"
            size = write_big_trace(sources[-1], trace, mb)
            out = subprocess.run(
                [sys.executable, "-c", script, str(trace), str(Path(tmp) / "big.trace.npz")],
                check=True, capture_output=True, text=True,
            ).stdout.split()  # fmt: skip
            events, seconds, rss_kb = int(out[0]), float(out[1]), int(out[2])
            print(
                f"{trace.name}: {size / 1e6:,.0f} MB, {events:,} events imported to a file in {seconds:.1f} s "
                f"({size / 1e6 / seconds:,.0f} MB/s), peak RSS {rss_kb / 1024:,.0f} MB"
            )
            trace.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="*", type=Path, help="logs to import (default: shared traces)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best is kept)")
    parser.add_argument("--big", type=int, default=0, metavar="MB", help="also import a synthetic trace of MB megabytes")
    args = parser.parse_args(argv)

    logs = args.logs or default_logs() + sorted(EXECTRACE_DIR.resolve().glob("*.trace.gz"))
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
        from goheap.trace import detect_format

        if detect_format(path) == "exectrace":
            time_exectrace(path, args.repeat)
            continue
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
    if args.big:
        big_trace_rss(args.big)
    return 0


if __name__ == "__main__":
    sys.exit(main())
