"""A sweep's results directory: written as runs finish, read back to resume, report and diff.

::

    DIR/sweep.json          the sweep: its grid and every run's id, label and parameters
    DIR/runs/RUN_ID.json    one run: its row, heap over time, occupancy, MemStats (or its error)
    DIR/results.parquet     the tidy table, one row per run (pyarrow), and the same as
    DIR/results.csv         CSV: every grid parameter and every figure (see :data:`COLUMNS`)

A run's JSON file is written (atomically) the moment it finishes, and the two tables are
rewritten from the rows so far at most once a second and at the end, each through a
temporary file renamed into place, so that whatever stops a sweep (Ctrl-C, a crash) leaves
every finished run on disk and no half-written file. ``--resume`` reads the run files
back: a run whose file records success is not run again (a failed one is).

In the table ``gogc`` is an integer, -1 for off; ``mode`` is empty for a workload's runs;
``policy`` is the policy's name; ``memory_limit`` and ``min_heap`` are byte counts
(``memory_limit`` -1 for off), empty where the run took the policy's own (a run's JSON file
holds the whole policy it ran, with its limits, under ``policy``).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .run import FIGURES, MEMSTATS_COLUMNS, RunRecord
from .spec import AXES, RunParams, SweepSpec, SweepSpecError

__all__ = ["COLUMNS", "ResultsDir", "read_run", "row_order", "table_row", "write_text"]

#: The table's columns, in order.
COLUMNS: tuple[str, ...] = (
    "run_id", "label", "source", "source_kind", *AXES, "clock", "status", "error",
    *FIGURES, *(f"memstats.{k}" for k in MEMSTATS_COLUMNS),
)  # fmt: skip
FORMAT = "goheap-sweep"
VERSION = 1
FLUSH_INTERVAL_S = 1.0


def table_row(record: dict[str, Any]) -> dict[str, Any]:
    """A run's JSON record as a row of the table (every column, None where it has no value)."""
    params = record["params"]
    source = params["source"]
    row = {
        "run_id": record["run_id"],
        "label": record["label"],
        "source": " ".join([source["name"], *source["args"]]),
        "source_kind": source["kind"],
        **{name: params["settings"].get(name) for name in AXES},
        "clock": params["clock"],
        **record["row"],
    }
    return {c: row.get(c) for c in COLUMNS}


def row_order(row: dict[str, Any]) -> tuple:
    """Rows in grid order: by source, then by each axis's value (None last)."""
    return (row["source_kind"], row["source"], *((row[a] is None, row[a] if row[a] is not None else 0) for a in AXES), row["clock"])


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Write through a temporary file beside ``path``, renamed over it when complete."""
    tmp = str(path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"))  # created by write, with the umask's mode
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, separators=(",", ":")))


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (no half-written file, ever)."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    _atomic_write(path, write)


def read_run(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run's JSON record (``DIR/runs/RUN_ID.json``)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class ResultsDir:
    """The results directory of one sweep (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.runs_dir = self.path / "runs"
        self._rows: dict[str, dict[str, Any]] = {}
        self.added: list[str] = []  # ids of the runs kept by this object's add(), in order
        self._dirty = False
        self._flushed_at = 0.0

    # ------------------------------------------------------------ before the sweep starts

    def holds_a_sweep(self) -> bool:
        return (self.path / "sweep.json").is_file()

    def check_writable(self, *, resume: bool) -> None:
        """Refuse a DIR that cannot take this sweep's results; raises SweepSpecError. Writes nothing."""
        p = self.path
        if p.exists() and not p.is_dir():
            raise SweepSpecError(f"{p}: exists and is not a directory")
        if p.is_dir():
            if self.holds_a_sweep():
                if not resume:
                    raise SweepSpecError(f"{p} holds a sweep already: --resume to continue it, or choose another -o DIR")
                try:
                    meta = json.loads((p / "sweep.json").read_text())
                except (OSError, ValueError) as exc:
                    raise SweepSpecError(f"{p}/sweep.json: cannot read it ({exc}); not resuming") from None
                if meta.get("format") != FORMAT:
                    raise SweepSpecError(f"{p}/sweep.json: not a goheap sweep")
            elif any(p.iterdir()):
                raise SweepSpecError(f"{p}: not empty, and holds no sweep: choose another -o DIR")
            if not os.access(p, os.W_OK | os.X_OK):
                raise SweepSpecError(f"{p}: not writable")
        else:
            parent = p.parent if str(p.parent) else Path(".")
            if not parent.is_dir():
                raise SweepSpecError(f"cannot write {p}: directory {parent} does not exist")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise SweepSpecError(f"cannot write {p}: {parent} is not writable")

    def spec(self, *, clock: str | None = None, **axes: Any) -> SweepSpec:
        """The sweep DIR records (its latest grid), checked again (its traces must still be there);
        ``clock`` and axes given (not None) replace its own."""
        from .spec import build_spec

        where = self.path / "sweep.json"
        try:
            again = json.loads(where.read_text())["spec"]
            grid = {**again["grid"], **{k: v for k, v in axes.items() if v is not None}}
            return build_spec(traces=again["traces"], workloads=again["workloads"], clock=clock or again["clock"], **grid)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SweepSpecError(f"{where}: cannot make the sweep again from it ({exc})") from None

    def finished(self) -> dict[str, dict[str, Any]]:
        """The records of the runs in DIR that succeeded, by run id (what --resume skips)."""
        out = {}
        if self.runs_dir.is_dir():
            for f in sorted(self.runs_dir.glob("*.json")):
                try:
                    record = read_run(f)
                except (OSError, ValueError):
                    continue  # not a complete record: run it again
                if record.get("row", {}).get("status") == "ok":
                    out[record["run_id"]] = record
        return out

    # ------------------------------------------------------------ during the sweep

    def create(self, spec: SweepSpec, runs: Iterable[RunParams]) -> None:
        """Make DIR and record the sweep (its grid and runs; on resume, added to those recorded)."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        known: dict[str, Any] = {}
        if self.holds_a_sweep():
            known = {r["run_id"]: r for r in json.loads((self.path / "sweep.json").read_text()).get("runs", [])}
        for r in runs:
            known.setdefault(r.run_id, {"run_id": r.run_id, "label": r.label, "params": r.to_json()})
        grid = {name: [AXES[name].text(v) for v in spec.axis_values(name)] for name in AXES}
        # what build_spec needs to make this sweep again (goheap sweep --resume -o DIR alone)
        again = {
            "traces": [s.path for s in spec.sources if s.kind == "trace"],
            "workloads": [s.label for s in spec.sources if s.kind == "workload"],
            "clock": spec.clock,
            "grid": {name: [AXES[name].form(v) for v in values] for name, values in spec.grid.items()},
        }
        _write_json(self.path / "sweep.json", {
            "format": FORMAT, "version": VERSION,
            "sources": [s.label for s in spec.sources], "grid": grid, "clock": spec.clock, "spec": again,
            "runs": list(known.values()),
        })  # fmt: skip
        for f in sorted(self.runs_dir.glob("*.json")):
            try:
                record = read_run(f)
            except (OSError, ValueError):
                continue
            self._rows[record["run_id"]] = table_row(record)
        self._dirty = True

    def add(self, record: RunRecord) -> None:
        """Keep a finished run: its JSON file now, the tables within a second."""
        data = record.to_json()
        _write_json(self.runs_dir / f"{record.run_id}.json", data)
        self._rows[record.run_id] = table_row(data)
        self.added.append(record.run_id)
        self._dirty = True
        if time.monotonic() - self._flushed_at >= FLUSH_INTERVAL_S:
            self.flush()

    def row(self, run_id: str) -> dict[str, Any]:
        return self._rows[run_id]

    def flush(self) -> None:
        """Rewrite results.parquet and results.csv from every run so far."""
        if not self._dirty:
            return
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(sorted(self._rows.values(), key=row_order))
        _atomic_write(self.path / "results.parquet", lambda tmp: pq.write_table(table, tmp))
        _atomic_write(self.path / "results.csv", lambda tmp: pacsv.write_csv(table, tmp))
        self._dirty = False
        self._flushed_at = time.monotonic()

    # ------------------------------------------------------------ afterwards

    def records(self) -> list[dict[str, Any]]:
        """Every run's JSON record in DIR, in the table's order."""
        out = []
        for f in self.runs_dir.glob("*.json"):
            try:
                out.append(read_run(f))
            except (OSError, ValueError):
                continue
        return sorted(out, key=lambda r: row_order(table_row(r)))
