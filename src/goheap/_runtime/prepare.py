"""Compiling the runtime before it runs: on every core, once per machine, with progress shown.

See :mod:`goheap._runtime.malloc` for the overview and ``units.py`` for how the runtime
splits into separately compiled parts. The first heap built on a machine (or after
goheap's compiled sources change) compiles them into numba's on-disk cache (``_jit.py``
says where); every later process loads them from it in a fraction of a second.

:func:`prepare` does that compiling up front, as a few *jobs* (the collector, the page
heap, the heap's entry points, ...). Jobs already done (a marker in the cache) are
skipped; the others are shared out between this process and one helper process per
spare core (``python -m goheap._runtime.prepare JOB...``), each writing to the same
cache; then this process loads what the helpers compiled. While it works it says so:
one line on stderr always, and on a terminal a progress bar.
"""

from __future__ import annotations

import functools
import gc
import importlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numba
from numba.core import event

from ._jit import cache_dir

__all__ = ["Job", "heap_jobs", "prepare"]


@dataclass(frozen=True)
class Job:
    """One piece of compiling: ``target`` ("module:function") is called with ``args`` in the process that does it.

    ``functions``: about how many numba compiles it makes when it runs alone (shared
    callees included), for the progress bar; ``seconds``: about its CPU time, for sharing
    the jobs out.
    """

    name: str
    target: str
    args: tuple = ()
    functions: int = 1
    seconds: float = 1.0

    @property
    def key(self) -> str:
        return "-".join([self.target.replace(":", "."), *map(str, self.args)])


def heap_jobs(*, race_mode: bool, nproc: int) -> list[Job]:
    """What building a heap with these settings, and running it, compiles."""
    from .units import UNIT_GC, UNIT_GC_PROCS, UNIT_MARK, UNIT_MHEAP_ALLOC, UNIT_MHEAP_FREE, UNIT_RACE

    # functions and seconds: each job compiled alone into an empty cache (bench/bench_compile.py)
    jobs = [
        Job("the heap's entry points", "goheap._runtime.entry:compile_entry_points", (race_mode,), functions=86, seconds=13.6),
        Job("the collector", "goheap._runtime.entry:compile_unit", (UNIT_GC,), functions=69, seconds=9.7),
        Job("the mark phase", "goheap._runtime.entry:compile_unit", (UNIT_MARK,), functions=27, seconds=5.8),
        Job("MHeap_Alloc", "goheap._runtime.entry:compile_unit", (UNIT_MHEAP_ALLOC,), functions=27, seconds=2.8),
        Job("MHeap_Free", "goheap._runtime.entry:compile_unit", (UNIT_MHEAP_FREE,), functions=13, seconds=1.4),
    ]
    if nproc > 1:
        jobs.append(Job("the collector's procs", "goheap._runtime.entry:compile_unit", (UNIT_GC_PROCS,), functions=59, seconds=10.4))
    if race_mode:
        jobs.append(Job("the race detector", "goheap._runtime.entry:compile_unit", (UNIT_RACE,), functions=38, seconds=7.3))
    return jobs


# ---------------------------------------------------------------- markers of finished jobs


def _marker(job: Job) -> Path:
    return Path(_cache_directory()) / "prepared" / job.key


def _cache_directory() -> str:
    """The cache directory (prepare() does nothing when there is none)."""
    directory = cache_dir()
    assert directory is not None
    return directory


def _is_done(job: Job) -> bool:
    return _marker(job).exists()


def _mark_done(job: Job) -> None:
    try:
        path = _marker(job)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError:
        pass  # no marker: a later process finds the job's code in the cache anyway


# While it compiles, numba makes objects by the million; Python's cycle collector, run at
# its usual pace, would walk them all again and again (a tenth of the compile's CPU).
COMPILE_GC_THRESHOLDS = (20000, 20, 20)


def _run(job: Job) -> None:
    module, function = job.target.split(":")
    thresholds = gc.get_threshold()
    gc.set_threshold(*COMPILE_GC_THRESHOLDS)
    try:
        getattr(importlib.import_module(module), function)(*job.args)
    finally:
        gc.set_threshold(*thresholds)
    _mark_done(job)


# ---------------------------------------------------------------- sharing out and progress


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _share(jobs: Sequence[Job], workers: int) -> list[list[Job]]:
    """Longest first, each to the least loaded worker; worker 0 is this process."""
    shares: list[list[Job]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    for job in sorted(jobs, key=lambda j: -j.seconds):
        w = load.index(min(load))
        shares[w].append(job)
        load[w] += job.seconds
    return shares


class _Progress:
    """How far the jobs are: compiles counted per job, in this process and in the helpers."""

    def __init__(self, jobs: Sequence[Job]):
        self.jobs = list(jobs)
        self.compiled = {job.key: 0 for job in jobs}
        self.done: set[str] = set()
        self.lock = threading.Lock()

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.compiled[key] += n

    def finish(self, key: str) -> None:
        with self.lock:
            self.done.add(key)

    def fraction(self) -> float:
        total = sum(job.seconds for job in self.jobs)
        with self.lock:
            got = sum(
                job.seconds * (1.0 if job.key in self.done else min(0.95, self.compiled[job.key] / job.functions))
                for job in self.jobs
            )
        return got / total

    def functions(self) -> int:
        with self.lock:
            return sum(self.compiled.values())


class _CountCompiles(event.Listener):
    def __init__(self, on_compile: Callable[[], None]):
        self.on_compile = on_compile

    def on_start(self, ev) -> None:
        self.on_compile()

    def on_end(self, ev) -> None:
        pass


def _display(progress: _Progress, stop: threading.Event, processes: int) -> None:
    """The progress bar, redrawn until ``stop`` (on a terminal only)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("compiling goheap's runtime"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[functions]} functions, {task.fields[processes]} processes"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=1.0, functions=0, processes=processes)
        while not stop.wait(0.1):
            bar.update(task, completed=progress.fraction(), functions=progress.functions())


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _start_helper(jobs: Sequence[Job], progress: _Progress) -> tuple[subprocess.Popen, threading.Thread] | None:
    """A helper process compiling ``jobs``, and the thread reading its reports; None if none could start."""
    env = {**os.environ, "NUMBA_CACHE_DIR": _cache_directory()}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", __name__, *(f"{job.target}={','.join(map(repr, job.args))}" for job in jobs)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
        )
    except OSError:
        return None

    def read() -> None:
        assert proc.stdout is not None  # a pipe
        for line in proc.stdout:
            what, _, key = line.strip().partition(" ")
            if key in progress.compiled:
                if what == "compiled":
                    progress.count(key)
                elif what == "done":
                    progress.finish(key)

    reader = threading.Thread(target=read, name="goheap-compile-helper", daemon=True)
    reader.start()
    return proc, reader


def prepare(jobs: Sequence[Job], *, stream=None) -> None:
    """Compile whatever of ``jobs`` is not in the cache yet, on every core; return when all are.

    Says so on ``stream`` (stderr): one line when it starts and one when it ends, and a
    progress bar in between when that is a terminal. Nothing at all when every job is
    done already, or interpreted (NUMBA_DISABLE_JIT).
    """
    if numba.config.DISABLE_JIT or cache_dir() is None:
        return  # nothing to share out: without a cache each process compiles what it uses
    todo = [job for job in jobs if not _is_done(job)]
    if not todo:
        return
    stream = stream if stream is not None else sys.stderr
    shares = [share for share in _share(todo, min(len(todo), _cores())) if share]
    t0 = time.perf_counter()
    _say(stream, f"goheap: compiling the runtime for this machine ({len(shares)} processes; once: it is cached in {cache_dir()})")
    progress = _Progress(todo)
    helpers = []
    for share in shares[1:]:
        helper = _start_helper(share, progress)
        if helper is None:
            shares[0].extend(share)  # no helper: this process compiles its share too
        else:
            helpers.append((helper, share))
    stop = threading.Event()
    display = None
    if stream is sys.stderr and _stderr_is_tty():
        display = threading.Thread(target=_display, args=(progress, stop, len(shares)), daemon=True)
        display.start()
    try:
        for job in shares[0]:
            with event.install_listener("numba:compile", _CountCompiles(functools.partial(progress.count, job.key))):
                _run(job)
            progress.finish(job.key)
        for (proc, reader), share in helpers:
            proc.wait()
            reader.join()
            for job in share:  # a helper that failed leaves its jobs to this process
                if not _is_done(job):
                    _run(job)
                    progress.finish(job.key)
    finally:
        for (proc, _), _ in helpers:
            if proc.poll() is None:
                proc.kill()
        stop.set()
        if display is not None:
            display.join()
    _say(stream, f"goheap: compiled {progress.functions()} functions in {time.perf_counter() - t0:.1f} s")


def _say(stream, line: str) -> None:
    if stream is not None:
        stream.write(line + "\n")
        stream.flush()


def _helper_main(specs: Sequence[str]) -> None:
    """A helper process: run each job given as ``module:function=args``, reporting on stdout."""
    import ast

    for spec in specs:
        target, _, args = spec.partition("=")
        job = Job("", target, tuple(ast.literal_eval(f"({args},)")) if args else ())

        def report(what: str, key: str = job.key) -> None:
            sys.stdout.write(f"{what} {key}\n")
            sys.stdout.flush()

        with event.install_listener("numba:compile", _CountCompiles(lambda: report("compiled"))):
            _run(job)
        report("done")


if __name__ == "__main__":
    _helper_main(sys.argv[1:])
