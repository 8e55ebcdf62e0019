"""Benchmark: speed of importing recorded Go programs (allocfreetrace logs, execution traces).

For each input (default: the shared Go 1.19 allocfreetrace logs in
``../shared/data/go1.19-traces`` and Go 1.27 execution traces in
``../shared/data/go1.27-traces`` beside the repository, or the paths given) this measures,
each figure the best of ``--repeat`` runs in one process:

* ``read``: what any reader pays first: for a log a plain ``for line in f: pass`` over
  it opened the same way (text mode, gzip-decompressed if needed); for an execution
  trace decompressing it (0 for a plain file);
* ``import``: :func:`goheap.trace.import_log` or :func:`goheap.trace.import_exectrace`
  (into memory; an execution trace after one warm-up import, as the compiled decoder
  loads from numba's cache once per process);
* ``to file``: :func:`goheap.trace.import_log_to_file` or
  :func:`goheap.trace.import_exectrace_to_file`, what ``goheap trace import`` runs.

Each is printed as MB/s of the input's *uncompressed* bytes (the trace or log itself,
whatever the file's compression) per second of CPU time (user + system, of this one
process: one core, and a figure the machine's other load does not move much), with the
wall-clock figure beside it. ``--plain`` also imports each gzipped execution trace from
its uncompressed bytes, as Go writes them. ``--baseline SRC`` measures the same inputs
with another checkout's goheap too (the ``src`` directory of, say, an earlier commit's
``git archive``), in the same run, in turn with this one (A B A B: ``--rounds``), and
prints the ratio of CPU times.

``--big MB`` also writes a trace of that many MB by repeating the generations of the
largest shared trace (renumbered, later in time; a valid trace whose heap repeats) and
imports it to a file in a fresh process, twice: the whole trace and its first quarter;
the peak RSS of the two shows whether memory stays flat as the trace grows.
``bench_replay.py`` reuses :func:`time_import` and :func:`time_import_to_file`.

Usage::

    .venv/bin/python bench/bench_trace_import.py [--repeat N] [--plain] [--baseline SRC] [--big MB] [INPUT ...]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
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


def _best(run, repeat: int) -> tuple[float, float]:
    """The least CPU seconds and the least wall seconds of ``repeat`` calls of ``run``."""
    cpu = wall = float("inf")
    for _ in range(repeat):
        c, w = time.process_time(), time.perf_counter()
        run()
        cpu, wall = min(cpu, time.process_time() - c), min(wall, time.perf_counter() - w)
    return cpu, wall


def measure(path: Path, repeat: int, plain: bool) -> dict:
    """The figures of one input (see the module docstring), as a dict of (cpu, wall) seconds."""
    from goheap.trace import detect_format

    out: dict = {"name": path.name}
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "t.trace.npz"
        if detect_format(path) == "exectrace":
            compressed = path.read_bytes()[:2] == b"\x1f\x8b"
            raw = gzip.open(path).read() if compressed else path.read_bytes()
            out["mb"] = len(raw) / 1e6
            out["read"] = _best(lambda: gzip.open(path).read(), repeat) if compressed else (0.0, 0.0)
            out["events"] = len(import_exectrace(path))  # also the warm-up
            out["import"] = _best(lambda: import_exectrace(path), repeat)
            out["to file"] = _best(lambda: import_exectrace_to_file(path, target), repeat)
            if plain:
                source = Path(tmp) / "plain.trace"
                source.write_bytes(raw)
                out["plain import"] = _best(lambda: import_exectrace(source), repeat)
                out["plain to file"] = _best(lambda: import_exectrace_to_file(source, target), repeat)
        else:
            trace = import_log(path)
            out["mb"] = trace.meta["log_bytes"] / 1e6
            out["events"] = len(trace)
            del trace
            out["read"] = _best(lambda: time_read(path), repeat)
            out["import"] = _best(lambda: import_log(path), repeat)
            out["to file"] = _best(lambda: import_log_to_file(path, target), repeat)
    return out


def _measure_in_child(path: Path, repeat: int, plain: bool, src: str | None) -> dict:
    """:func:`measure` in a fresh process, importing goheap from ``src`` if given."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(src).resolve()), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    argv = [sys.executable, __file__, "--child", "--repeat", str(repeat), *(["--plain"] if plain else []), str(path)]
    done = subprocess.run(argv, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.splitlines()[-1])


def _merge_best(a: dict | None, b: dict) -> dict:
    if a is None:
        return b
    return {k: (min(a[k][0], v[0]), min(a[k][1], v[1])) if isinstance(v, list) else v for k, v in b.items()}


def _print_figures(figures: dict, baseline: dict | None) -> None:
    mb = figures["mb"]
    stages = [k for k in ("read", "import", "to file", "plain import", "plain to file") if k in figures]
    cells = []
    for stage in stages:
        cpu, wall = figures[stage]
        cell = f"{stage} {mb / cpu if cpu else float('inf'):6.1f} ({mb / wall if wall else float('inf'):5.1f} wall)"
        if baseline is not None and stage in baseline and cpu:
            cell += f" x{baseline[stage][0] / cpu:4.2f}"
        cells.append(cell)
    print(f"  {figures['name']:<32} {mb:7.1f} MB {figures['events']:>10,} events | " + " | ".join(cells))


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
    raw_batches = [g.batches() for g in read_generations(inp, version)]
    inp.close()
    t0 = min(b.ts for batches in raw_batches for b in batches)
    span = max(b.ts for batches in raw_batches for b in batches) - t0 + 1
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
    parser.add_argument("logs", nargs="*", type=Path, help="inputs to import (default: the shared traces)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best is kept)")
    parser.add_argument("--rounds", type=int, default=2, help="with --baseline: A B rounds (best is kept)")
    parser.add_argument("--plain", action="store_true", help="also import execution traces uncompressed")
    parser.add_argument("--baseline", metavar="SRC", help="another checkout's src directory to compare with")
    parser.add_argument("--big", type=int, default=0, metavar="MB", help="also import a synthetic trace of MB megabytes")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.logs[0], args.repeat, args.plain)))
        return 0

    logs = args.logs or default_logs() + sorted(EXECTRACE_DIR.resolve().glob("*.trace.gz"))
    if not logs:
        print(f"no inputs given and none found in {DEFAULT_DIR.resolve()}", file=sys.stderr)
        return 1
    print(f"MB/s of uncompressed input per CPU second (per wall second); load average {os.getloadavg()[0]:.1f}")
    if args.baseline:
        print(f"A: this checkout; B: {args.baseline}; xN: B's CPU time / A's")
    for path in logs:
        ours = base = None
        for _ in range(args.rounds if args.baseline else 1):
            ours = _merge_best(ours, _measure_in_child(path, args.repeat, args.plain, None))
            if args.baseline:
                base = _merge_best(base, _measure_in_child(path, args.repeat, args.plain, args.baseline))
        if base is not None:
            print("B", end="")
            _print_figures(base, None)
            print("A", end="")
        _print_figures(ours, base)
    print(f"load average {os.getloadavg()[0]:.1f}")
    if args.big:
        big_trace_rss(args.big)
    return 0


if __name__ == "__main__":
    sys.exit(main())
