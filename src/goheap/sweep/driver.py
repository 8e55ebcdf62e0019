"""Run a whole sweep: check, connect, run, stream the results to DIR, stop cleanly on Ctrl-C.

:func:`run_sweep` is what ``goheap sweep`` calls. In order: the results directory is
checked (nothing is written yet), runs already in it are set aside (``resume``), the
runner is started (a Dask cluster, or this process), and only then is DIR created; each
run is kept the moment it finishes (:class:`~goheap.sweep.results.ResultsDir`). A bad
spec, an unusable DIR or an unreachable scheduler is therefore an error with nothing
written. Ctrl-C (KeyboardInterrupt) cancels the runs not finished, keeps every finished
one, writes the tables and returns with ``interrupted`` set (the signal's name).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..interrupts import interrupt_caught
from .results import ResultsDir
from .run import RunRecord
from .spec import SweepSpec

__all__ = ["SweepOutcome", "run_sweep"]


@dataclass
class SweepOutcome:
    """How a sweep went: runs in the grid, set aside as done already, finished now (ok, failed)."""

    path: Path
    total: int
    skipped: int
    ok: int = 0
    failed: int = 0
    interrupted: str = ""  # the signal that stopped it ("SIGINT", "SIGTERM"), "" if none did
    exit_status: int = 0  # what a shell expects of a command so stopped: 128 + the signal
    where: str = ""
    seconds: float = 0.0

    @property
    def finished(self) -> int:
        return self.ok + self.failed

    @property
    def missing(self) -> int:
        return self.total - self.skipped - self.finished


class _Progress:
    """done / failed / running counts: a rich progress bar on a terminal, else a line per finished run."""

    def __init__(self, total: int, skipped: int, style: str | None):
        self.total = total
        self.skipped = skipped
        self.style = style
        self.ok = self.failed = 0
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._bar = None
        if style == "bar":
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("sweep"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("[green]{task.fields[ok]} done"),
                TextColumn("[red]{task.fields[failed]} failed"),
                TextColumn("[cyan]{task.fields[running]} running"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("sweep", total=total, completed=skipped, ok=skipped, failed=0, running=0)

    def _refresh(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.skipped + self.ok + self.failed, ok=self.skipped + self.ok,
                             failed=self.failed, running=len(self._running))  # fmt: skip

    def started(self, run_id: str) -> None:
        with self._lock:
            self._running.add(run_id)
            self._refresh()

    def finished(self, record: RunRecord) -> None:
        with self._lock:
            self._running.discard(record.run_id)
            if record.ok:
                self.ok += 1
            else:
                self.failed += 1
            self._refresh()
        if self.style == "lines":
            n = self.skipped + self.ok + self.failed
            wall = record.row.get("wall_s")
            took = f" ({wall:.1f} s)" if isinstance(wall, float) else ""
            status = "ok" if record.ok else f"FAILED: {record.row.get('error')}"
            print(f"[{n}/{self.total}] {record.params.label}{took}: {status}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    serial: bool = False,
    resume: bool = False,
    progress: str | None = None,
    on_record: Callable[[RunRecord], None] | None = None,
    runner=None,
) -> SweepOutcome:
    """Run every run of ``spec`` and keep the results in ``out`` (see the module docstring).

    serial: in this process; else on Dask: the scheduler at ``scheduler``, or a LocalCluster
    of ``workers`` processes (default one per core). resume: skip the runs ``out`` holds
    already (successful ones); without it ``out`` must not hold a sweep. progress: "bar"
    (rich, on stderr), "lines" (a line per finished run on stderr) or None.
    on_record(record): called with each finished run, after it is saved.
    runner: a :class:`~goheap.sweep.cluster.DaskRunner` or ``SerialRunner`` to use (and
    leave open) instead of starting one.

    Raises :class:`~goheap.sweep.spec.SweepSpecError` (an unusable DIR) or
    :class:`~goheap.sweep.cluster.SchedulerUnreachable` before writing anything.
    """
    from .cluster import DaskRunner, SerialRunner, default_workers

    t0 = time.perf_counter()
    results = ResultsDir(out)
    results.check_writable(resume=resume)
    runs = spec.runs()
    done = results.finished() if resume else {}
    todo = [r for r in runs if r.run_id not in done]
    skipped = len(runs) - len(todo)
    outcome = SweepOutcome(Path(out), len(runs), skipped)
    own_runner = runner is None
    if runner is None:
        if serial or not todo:
            runner = SerialRunner()
        else:
            if progress is not None:  # the cluster takes seconds to start: say what is happening
                what = f"connecting to the Dask scheduler at {scheduler}" if scheduler else (
                    f"starting a local Dask cluster of {workers or default_workers()} worker processes")
                print(f"goheap sweep: {len(todo)} runs to do; {what}", file=sys.stderr, flush=True)
            runner = DaskRunner(scheduler, workers)
    outcome.where = runner.description
    bar = None
    try:
        results.create(spec, runs)
        bar = _Progress(len(runs), skipped, progress)
        for record in runner.run(todo, spec.traces, bar.started):
            results.add(record)
            bar.finished(record)
            if on_record is not None:
                on_record(record)
    except KeyboardInterrupt as exc:  # goheap.interrupts.Interrupted on the command line: SIGINT or SIGTERM
        interrupt_caught()  # winding down on purpose: keep what finished
        outcome.interrupted = getattr(exc, "signal_name", "SIGINT")
        outcome.exit_status = getattr(exc, "exit_status", 130)
    finally:
        if bar is not None:
            bar.close()
        if own_runner:
            runner.close(interrupted=bool(outcome.interrupted))
        else:
            runner.cancel()
        if results.runs_dir.is_dir():
            results.flush()
    statuses = [results.row(run_id)["status"] for run_id in results.added]  # what was kept, however it stopped
    outcome.ok = statuses.count("ok")
    outcome.failed = len(statuses) - outcome.ok
    outcome.seconds = time.perf_counter() - t0
    return outcome
