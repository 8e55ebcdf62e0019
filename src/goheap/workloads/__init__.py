"""Built-in workloads: exact ports of the programs the seed runs were made with.

Each workload is a Go program of ../data/go-seed-runs/programs ported allocation for
allocation onto a goheap heap, its stack frames emulated as the 2013 compiler laid them
out (:mod:`goheap.workloads.gostack`), run inside a model of the 2013 Go process around it
(:mod:`goheap.workloads.goprocess`). :func:`run_workload` runs one on a fresh heap and
returns what the Go program prints, the MemStats it dumps and the collector's trace:

    >>> result = run_workload("binarytrees", ["10"], gcpercent=100, gctrace=0)  # doctest: +SKIP
    >>> result.lines[0]
    'stretch tree of depth 11\\t check: 4095'

``goheap run WORKLOAD [ARGS]`` prints the same in the seed runs' format.
"""

from __future__ import annotations

import importlib
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from .. import _importing
from ..errors import HeapError
from ..policy import SEED, Policy

if TYPE_CHECKING:
    import numpy as np

    from .._runtime.stats import MemStats
    from ..heap import Heap
    from .seedrun import SeedRun

__all__ = ["WORKLOADS", "RunResult", "UnknownWorkload", "Workload", "WorkloadError", "run_workload"]


class WorkloadError(HeapError, ValueError):
    """A workload's arguments are not valid."""

    __module__ = "goheap"


class UnknownWorkload(WorkloadError):
    """No workload has that name."""

    __module__ = "goheap"


@dataclass(frozen=True)
class Workload:
    name: str
    usage: str
    summary: str
    parse_args: Callable[[list[str]], object]
    run: Callable[..., None]  # run(heap, parsed args, the GoProcess, tick, progress)
    program: str  # the Go program whose process it runs in (goprocess.PROGRAMS)


# The stretch tree of depth N+1 has 2**(N+2)-1 nodes of 16 bytes: 2**(N+6) bytes, the whole
# 128 GB (2**37) arena at N = 31. The Go program runs out of memory there too.
BINARYTREES_MAX_N = 31


def parse_binarytrees_args(args: list[str]) -> int:
    """``binarytrees N``: strconv.Atoi of the first argument, 0 when absent."""
    if len(args) > 1:
        raise ValueError(f"binarytrees takes one argument, the maximum depth N, not {len(args)}")
    if not args:
        return 0
    try:
        n = int(args[0], 10)
    except ValueError:
        raise ValueError(f"binarytrees: N must be an integer, not {args[0]!r}") from None
    if n > BINARYTREES_MAX_N:
        raise ValueError(
            f"binarytrees: N={n} is too deep: its stretch tree (depth N+1) alone would need "
            f"2**{n + 6} bytes, more than the 128 GB arena holds; N can be at most {BINARYTREES_MAX_N}"
        )
    return n


def _no_args(name: str) -> Callable[[list[str]], tuple[()]]:
    def parse_args(args: list[str]) -> tuple[()]:
        if args:
            raise ValueError(f"{name} takes no arguments, not {' '.join(args)!r}")
        return ()

    return parse_args


def _port(module: str, function: str = "run") -> Callable[..., None]:
    """The port's ``function``, its module imported (with the compiled runtime) only when it runs."""

    def run(*args):
        with _importing():
            port = importlib.import_module(f".{module}", __name__)
        return getattr(port, function)(*args)

    return run


# The arguments are checked before anything is compiled or even imported: a mistyped
# command line fails at once.
WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "binarytrees",
            "binarytrees [N]",
            "binary-trees of max depth N (min 6): 16-byte two-pointer nodes, short- and long-lived trees",
            parse_binarytrees_args,
            _port("binarytrees"),
            "binarytrees",
        ),
        Workload(
            "binarytrees-py",
            "binarytrees-py [N]",
            "binary-trees through the Python API only (exact roots; slow: for small N)",
            parse_binarytrees_args,
            lambda heap, n, go, tick, progress: _port("binarytrees", "run_python")(heap, n, go),
            "binarytrees",
        ),
        Workload(
            "gcbench",
            "gcbench",
            "Boehm's GCBench: 32-byte nodes, top-down and bottom-up trees, a 4 MB float64 array",
            _no_args("gcbench"),
            _port("gcbench"),
            "gcbench",
        ),
        Workload(
            "churn",
            "churn",
            "2M []byte of random sizes (8 B to 1 MB) through a 10000-slot ring",
            _no_args("churn"),
            _port("churn"),
            "churn",
        ),
    )
}


@dataclass
class RunResult:
    """What one run printed and measured."""

    workload: str
    args: list[str]
    lines: list[str]  # the program's own output, one string per line
    memstats: MemStats
    gctrace: np.ndarray  # one row per collection (columns: goheap._runtime.layout.TR_*)
    elapsed_s: float
    policy: Policy = SEED  # the policy the heap ran

    def stdout_lines(self) -> list[str]:
        """The program's output, then ``# MemStats`` and its Key=Value lines (the seed runs' .stdout)."""
        return [*self.lines, "# MemStats", *self.memstats.go_lines()]

    def gctrace_lines(self) -> list[str]:
        """The collector's trace, one seed-format line per collection (the seed runs' .stderr),
        after a line naming the policy unless it is the seed's."""
        from .._runtime.gctrace import format_gctrace

        header = [] if self.policy.is_seed else [self.policy.trace_line()]
        return header + [format_gctrace(row) for row in self.gctrace]

    def to_seed_run(self) -> SeedRun:
        from .seedrun import SeedRun

        return SeedRun.from_text("\n".join(self.stdout_lines()), "\n".join(self.gctrace_lines()), self.workload)


def get_workload(name: str) -> Workload:
    try:
        return WORKLOADS[name]
    except KeyError:
        known = ", ".join(sorted(WORKLOADS))
        raise UnknownWorkload(f"unknown workload {name!r} (known: {known})") from None


def run_workload(
    name: str,
    args: Sequence[str] = (),
    *,
    gcpercent: int | None = None,
    gctrace: int | None = None,
    trace_stream: TextIO | None = None,
    progress: Callable[[float], None] | None = None,
    on_tick: Callable[[Heap], None] | None = None,
    on_exit: Callable[[Heap], None] | None = None,
    virtual_clock: bool = False,
    gogc_in_environ: bool | None = None,
    **config,
) -> RunResult:
    """Run workload ``name`` with ``args`` on a fresh heap in a model Go process.

    gcpercent / gctrace: None reads GOGC / GOGCTRACE as the seed does. Trace lines go to
    ``trace_stream`` (stderr by default). ``progress(fraction)`` is called as the run
    advances; ``on_tick(heap)`` after every compiled chunk (for sampling); ``on_exit(heap)``
    once the program has finished, before the heap is closed (for a last look at it).
    ``gogc_in_environ`` sets whether the modelled Go process had GOGC in its environment
    (see :class:`~goheap.workloads.goprocess.GoProcess`). Extra keyword arguments go to
    :class:`goheap.HeapConfig`.
    """
    workload = get_workload(name)
    args = list(args)
    try:
        parsed = workload.parse_args(args)
    except ValueError as exc:
        raise WorkloadError(str(exc)) from None
    with _importing():
        from .goprocess import GoProcess

    with GoProcess(
        workload.program,
        1 + len(args),
        gcpercent=gcpercent,
        gctrace=gctrace,
        trace_stream=trace_stream if trace_stream is not None else _stderr(),
        virtual_clock=virtual_clock,
        gogc_in_environ=gogc_in_environ,
        **config,
    ) as proc:
        heap = proc.heap
        t0 = time.perf_counter()
        proc.start()

        def tick() -> None:
            heap.after_compiled()
            if on_tick is not None:
                on_tick(heap)

        workload.run(heap, parsed, proc, tick, progress or (lambda fraction: None))
        proc.exit()
        elapsed = time.perf_counter() - t0
        result = RunResult(name, args, proc.lines, heap.read_mem_stats(), heap.gctrace_rows(), elapsed, heap.policy)
        if on_exit is not None:
            on_exit(heap)
        return result


def _stderr() -> TextIO:
    import sys

    return sys.stderr if sys.stderr is not None else io.StringIO()
