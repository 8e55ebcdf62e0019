"""Runs in the seed runs' format: read them, and line up two of them.

A run is a pair of files, ``PREFIX.stdout`` (the program's output, ``# MemStats``, one
``Key=Value`` line per runtime.MemStats field, ``PauseNs[gcK]=...`` and
``BySize[i].Size/.Mallocs/.Frees``) and ``PREFIX.stderr`` (gctrace lines; anything else
is ignored). ``goheap run`` writes exactly this format; ../data/go-seed-runs/runs holds
real ones. :func:`compare_runs` measures the fidelity criteria of the project: equal
NumGC (within one), live objects after each collection (within 1%), equal HeapSys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .._runtime.gctrace import parse_gctrace

__all__ = ["Comparison", "GCRow", "SeedRun", "compare_runs", "parse_run_name"]

_INDEXED_KEY = re.compile(r"^(?:PauseNs\[gc(\d+)\]|BySize\[(\d+)\]\.(\w+))$")
_KEY_VALUE = re.compile(r"^([A-Za-z]+(?:\[[^\]]+\])?(?:\.[A-Za-z]+)?)=(.*)$")
_NAME = re.compile(r"^(?P<workload>[a-z][a-z0-9-]*?)(?:-N(?P<n>\d+))?(?:-gogc(?P<gogc>\d+|off)(?P<default>default)?)?$")


class SeedRunFormatError(ValueError):
    """A run file does not follow the format (names the file and line)."""


@dataclass(frozen=True)
class GCRow:
    """One gctrace line's fields (see goheap._runtime.gctrace.parse_gctrace)."""

    numgc: int
    heap0_mb: int
    heap1_mb: int
    obj0: int
    obj1: int
    nmalloc: int
    nfree: int
    pause_ms: int  # mark + sweep + other, as printed (truncated ms each)


@dataclass
class SeedRun:
    """One run: program output, MemStats, pauses, per-class counts, gctrace rows."""

    lines: list[str] = field(default_factory=list)
    memstats: dict[str, int] = field(default_factory=dict)  # scalar fields; booleans as 0/1
    pause_ns: dict[int, int] = field(default_factory=dict)  # GC number (1-based) -> ns
    by_size: list[tuple[int, int, int]] = field(default_factory=list)  # (size, mallocs, frees)
    gcs: list[GCRow] = field(default_factory=list)

    @classmethod
    def from_text(cls, stdout: str, stderr: str = "", name: str = "<run>") -> SeedRun:
        run = cls()
        in_stats = False
        by_size: dict[int, dict[str, int]] = {}
        for lineno, line in enumerate(stdout.splitlines(), 1):
            if not in_stats:
                if line == "# MemStats":
                    in_stats = True
                else:
                    run.lines.append(line)
                continue
            m = _KEY_VALUE.match(line)
            if not m:
                raise SeedRunFormatError(f"{name}.stdout:{lineno}: expected Key=Value after '# MemStats', got {line!r}")
            key, value = m.groups()
            number = 1 if value == "true" else 0 if value == "false" else _int(value, name, lineno)
            if key.startswith(("PauseNs[gc", "BySize[")):
                indexed = _INDEXED_KEY.match(key)
                if indexed is None:
                    raise SeedRunFormatError(f"{name}.stdout:{lineno}: expected PauseNs[gcN] or BySize[N].Field, got {key!r}")
                gc, index, attr = indexed.groups()
                if gc is not None:
                    run.pause_ns[int(gc)] = number
                else:
                    by_size.setdefault(int(index), {})[attr] = number
            else:
                run.memstats[key] = number
        if not in_stats:
            raise SeedRunFormatError(f"{name}.stdout: no '# MemStats' line")
        run.by_size = [(v.get("Size", 0), v.get("Mallocs", 0), v.get("Frees", 0)) for _, v in sorted(by_size.items())]
        for line in stderr.splitlines():
            f = parse_gctrace(line)
            if f is not None:
                run.gcs.append(
                    GCRow(f["numgc"], f["heap0"], f["heap1"], f["obj0"], f["obj1"], f["nmalloc"], f["nfree"], f["mark"] + f["sweep"] + f["other"])
                )
        return run

    @classmethod
    def from_files(cls, prefix: str | Path) -> SeedRun:
        """Read ``PREFIX.stdout`` and (if present) ``PREFIX.stderr``."""
        prefix = Path(prefix)
        out = prefix.with_name(prefix.name + ".stdout")
        err = prefix.with_name(prefix.name + ".stderr")
        stdout = _read_text(out)
        stderr = _read_text(err) if err.exists() else ""
        return cls.from_text(stdout, stderr, str(prefix))


#: The largest run file :meth:`SeedRun.from_files` reads (a real one is a few KB).
MAX_RUN_FILE_BYTES = 64 << 20


def _read_text(path: Path) -> str:
    """A run file's text: UTF-8 (the seed runs are ASCII), at most MAX_RUN_FILE_BYTES."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_RUN_FILE_BYTES + 1)
    except OSError as exc:
        raise SeedRunFormatError(f"cannot read {path}: {(exc.strerror or str(exc)).lower()}") from None
    if len(data) > MAX_RUN_FILE_BYTES:
        raise SeedRunFormatError(f"{path}: larger than {MAX_RUN_FILE_BYTES >> 20} MB: not a run's output")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SeedRunFormatError(
            f"{path}:{line}: byte {exc.start:,} ({data[exc.start]:#04x}) is not UTF-8 text: not a run's output"
        ) from None


def _int(value: str, name: str, lineno: int) -> int:
    try:
        return int(value)
    except ValueError:
        raise SeedRunFormatError(f"{name}.stdout:{lineno}: {value!r} is not an integer") from None


def parse_run_name(name: str) -> tuple[str, list[str], str | None]:
    """(workload, args, GOGC) from a run's file name, e.g. ``binarytrees-N10-gogc50``.

    GOGC is None when the name does not set it: no ``-gogcN`` part, or ``-gogc100default``
    (the run had no GOGC in its environment, and the runtime used its default).
    """
    m = _NAME.match(Path(name).name)
    if not m:
        raise ValueError(f"cannot tell the workload from the run name {name!r}")
    args = [m.group("n")] if m.group("n") else []
    gogc = None if m.group("default") else m.group("gogc")
    return m.group("workload"), args, gogc


@dataclass
class Comparison:
    """Two runs lined up: the fidelity figures and whether each criterion holds."""

    ref: SeedRun
    ours: SeedRun
    live_tolerance: float = 0.01

    @property
    def numgc(self) -> tuple[int, int]:
        return self.ref.memstats.get("NumGC", len(self.ref.gcs)), self.ours.memstats.get("NumGC", len(self.ours.gcs))

    @property
    def numgc_ok(self) -> bool:
        a, b = self.numgc
        return abs(a - b) <= 1

    def live_diffs(self) -> list[tuple[int, int, int, float]]:
        """(GC number, ref live objects after, ours, relative difference) for GCs both have."""
        out = []
        for a, b in zip(self.ref.gcs, self.ours.gcs):
            rel = (b.obj1 - a.obj1) / a.obj1 if a.obj1 else float(b.obj1 != 0)
            out.append((a.numgc, a.obj1, b.obj1, rel))
        return out

    def live_within(self) -> float:
        """The share of common GCs whose live-object count is within the tolerance."""
        diffs = self.live_diffs()
        if not diffs:
            return 1.0
        return sum(1 for *_, rel in diffs if abs(rel) <= self.live_tolerance) / len(diffs)

    @property
    def heap_sys_ok(self) -> bool:
        return self.ref.memstats.get("HeapSys") == self.ours.memstats.get("HeapSys")

    def summary_rows(self) -> list[tuple[str, int | None, int | None]]:
        keys = ("NumGC", "HeapSys", "HeapAlloc", "HeapObjects", "Mallocs", "Frees", "TotalAlloc", "NextGC", "PauseTotalNs", "Sys")
        return [(k, self.ref.memstats.get(k), self.ours.memstats.get(k)) for k in keys]


def compare_runs(ref: SeedRun, ours: SeedRun, live_tolerance: float = 0.01) -> Comparison:
    return Comparison(ref, ours, live_tolerance)
