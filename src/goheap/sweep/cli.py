"""``goheap sweep`` and ``goheap diff``; the main ``goheap`` command adds both.

Errors a user can make (a bad spec, an unusable output directory, an unreachable
scheduler, an input of diff that is not a run) print one line on stderr and exit with
status 2 before anything runs or is written (:func:`goheap.command.fail`). A sweep in
which some run failed exits with status 1 (the failures are in the table and the runs'
files); one stopped by Ctrl-C or SIGTERM with 130 or 143, keeping every run that finished.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import click

from ..command import check_outputs, fail

if TYPE_CHECKING:
    from rich.console import JustifyMethod

__all__ = ["diff_command", "sweep_command"]


@overload
def _split(value: str) -> list[str]: ...
@overload
def _split(value: None) -> None: ...
@overload
def _split(value: str | None) -> list[str] | None: ...
def _split(value: str | None) -> list[str] | None:
    """'25,50, 100' -> ['25', '50', '100']; an empty item stays, so that it is reported."""
    if value is None:
        return None
    return [v.strip() for v in value.split(",")]


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


EXAMPLE = """\b
Example: four GOGC values, two policies, both replay modes, on two local workers:
  goheap sweep --trace bt.trace.npz --gogc 25,50,100,200 --policy seed,modern --mode gc,free \\
      --workers 2 -o bt-sweep --report bt.html

\b
A SPEC.toml file says the same (flags given too replace its keys):
  traces = ["bt.trace.npz"]          # relative to the file
  workloads = ["binarytrees 12"]
  clock = "real"                     # or "virtual": every figure reproducible, pauses 0
  [grid]
  gogc = [25, 50, 100, 200, "off"]
  mode = ["gc", "free"]              # traces only
  policy = ["seed", "modern"]        # presets (goheap policies) or FILE.toml, relative to the file
  memory_limit = ["off", "64MiB"]    # the pacer's soft limit; $GOMEMLIMIT is not read"""


@click.command("sweep", epilog=EXAMPLE)
@click.argument("spec", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), default=None,
              help="Results directory (default: SPEC's name + '-sweep', or 'sweep-results').")
@click.option("--trace", "traces", multiple=True, metavar="TRACE", help="A trace file to replay (repeatable).")
@click.option("--workload", "workloads", multiple=True, metavar="'NAME ARGS'",
              help="A built-in workload with its arguments, e.g. 'binarytrees 12' (repeatable).")
@click.option("--gogc", metavar="N,N,...", help="GOGC values (integers >= 0 or off).")
@click.option("--mode", metavar="gc,free", help="Replay modes for traces: gc, free or both.")
@click.option("--policy", metavar="NAME,...", help="Policies: presets (see `goheap policies`) or FILE.toml policy files.")
@click.option("--memory-limit", "memory_limit", metavar="BYTES,...",
              help="Soft memory limits as GOMEMLIMIT writes them (64MiB), or off (default: the policy's; $GOMEMLIMIT is not read).")
@click.option("--min-heap", "min_heap", metavar="BYTES,...", help="Minimum heaps at GOGC=100 (4MiB; 0: none; default: the policy's).")
@click.option("--clock", type=click.Choice(["real", "virtual"]), default=None,
              help="real (default): pauses measured; virtual: pauses take no time, every figure reproducible.")
@click.option("--scheduler", envvar="DASK_SCHEDULER_ADDRESS", metavar="tcp://HOST:8786",
              help="Run on the Dask cluster of this scheduler (default: $DASK_SCHEDULER_ADDRESS, else a local cluster).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes of the local cluster (default: one per core).")
@click.option("--serial", is_flag=True, help="Run in this process, one run after another, without Dask.")
@click.option("--resume", is_flag=True,
              help="Continue the sweep in the results directory: skip the runs done (alone: the grid it records).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.html",
              help="Write the comparison report of every run in the results directory.")
@click.pass_context
def sweep_command(ctx, spec, out, traces, workloads, gogc, mode, policy, memory_limit, min_heap, clock, scheduler, workers, serial, resume,
                  report) -> None:  # fmt: skip
    """Run a grid of runs on Dask and compare them.

    Every combination of the grid's values runs on every source; each run's figures
    (NumGC, pauses, peak HeapAlloc/HeapInuse/HeapSys, peak resident heap, fragmentation,
    final MemStats, CPU time, heap over time) stream to the results directory as runs
    finish: results.parquet and results.csv (a row per run) and runs/RUN_ID.json.
    """
    from click.core import ParameterSource

    from .spec import SweepSpecError, build_spec, load_spec

    if serial and ctx.get_parameter_source("scheduler") is ParameterSource.COMMANDLINE:
        raise fail("--serial runs in this process: it cannot be combined with --scheduler")
    if serial:
        scheduler = None
    if scheduler and workers:
        raise fail("--workers sizes a local cluster; with --scheduler the cluster has its own workers")
    if serial and workers:
        raise fail("--serial runs in this process: it cannot be combined with --workers")
    check_outputs({"--report": report})
    # paths on the command line are the shell's: relative to here, not to SPEC
    policies = [str(Path(p).resolve()) if p.endswith(".toml") else p for p in _split(policy)] if policy is not None else None
    axes: dict[str, Any] = {"gogc": _split(gogc), "mode": _split(mode), "policy": policies, "memory_limit": _split(memory_limit),
            "min_heap": _split(min_heap)}  # fmt: skip
    if out is None:
        out = Path(f"{spec.stem}-sweep") if spec is not None else Path("sweep-results")
    try:
        if spec is None and not traces and not workloads and resume:
            from .results import ResultsDir

            results = ResultsDir(out)
            if not results.holds_a_sweep():
                raise SweepSpecError(f"{out} holds no sweep to resume; give a SPEC file, --trace or --workload")
            sweep = results.spec(clock=clock, **axes)
        elif spec is not None:
            overrides = {"traces": [str(Path(t).resolve()) for t in traces] or None, "workloads": list(workloads) or None, "clock": clock, **axes}
            sweep = load_spec(spec, **overrides)
        else:
            sweep = build_spec(traces=traces, workloads=workloads, clock=clock, **axes)
    except SweepSpecError as exc:
        raise fail(str(exc)) from None

    from .cluster import SchedulerUnreachable
    from .driver import run_sweep

    progress = "bar" if _stderr_is_tty() else "lines"
    try:
        outcome = run_sweep(sweep, out, scheduler=scheduler, workers=workers, serial=serial, resume=resume, progress=progress)
    except (SweepSpecError, SchedulerUnreachable) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot write {exc.filename}: {exc.strerror}") from None

    done = f"{outcome.ok} done" + (f", {outcome.skipped} done before" if outcome.skipped else "")
    click.echo(f"{outcome.total} runs: {done}, {outcome.failed} failed; {outcome.where}, in {outcome.seconds:.1f} s.")
    click.echo(f"Results: {out}/results.parquet, {out}/results.csv, {out}/runs/")
    if report is not None and (out / "sweep.json").is_file():
        from ..report.comparison import write_comparison

        write_comparison(report, out)
        click.echo(f"Report: {report}")
    if outcome.interrupted:
        click.echo(f"goheap sweep: interrupted ({outcome.interrupted}): {outcome.missing} of {outcome.total} runs "
                   f"not done; every finished run is kept in {out} (--resume continues)", err=True)  # fmt: skip
        raise click.exceptions.Exit(outcome.exit_status)
    if outcome.failed:
        raise click.exceptions.Exit(1)


@click.command(
    "diff",
    epilog="\b\nExamples:\n  goheap run binarytrees 12 --gogc 50 --json > a.json\n"
    "  goheap run binarytrees 12 --gogc 200 --json > b.json\n  goheap diff a.json b.json\n  goheap diff a.json bt-sweep:3",
)
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as one JSON object.")
def diff_command(a: str, b: str, as_json: bool) -> None:
    """Compare two runs field by field.

    A and B are `goheap run/replay --json` outputs saved to files, or rows of a sweep.

    A sweep's row is DIR:RUN_ID (or a prefix of it) or DIR:N (the Nth row of DIR/results.csv).
    """
    from .diff import DiffInputError, diff, load_run_view

    try:
        result = diff(load_run_view(a), load_run_view(b))
    except DiffInputError as exc:
        raise fail(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    _print_diff(result)


def _print_diff(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    params = Table(title="Parameters", title_justify="left")
    for col in ("", "A", "B"):
        params.add_column(col)
    for k, v in result["params"].items():
        style = "" if v["a"] == v["b"] else "bold"
        params.add_row(k, str(v["a"]), str(v["b"]), style=style)
    console.print(f"A: {result['a']}\nB: {result['b']}")
    console.print(params)
    for title, key in (("Figures", "figures"), ("MemStats at the end", "memstats")):
        t = Table(title=title, title_justify="left")
        columns: tuple[tuple[str, JustifyMethod], ...] = (
            ("field", "left"), ("A", "right"), ("B", "right"), ("B - A", "right"), ("B / A", "right")
        )
        for col, justify in columns:
            t.add_column(col, justify=justify)
        for k, v in result[key].items():
            fmt = (lambda x: f"{x:,.3f}") if any(isinstance(v[s], float) for s in ("a", "b")) else (lambda x: f"{x:,}")
            ratio = "" if v["ratio"] is None else f"{v['ratio']:.3f}"
            style = "dim" if v["diff"] == 0 else ""
            t.add_row(k, fmt(v["a"]), fmt(v["b"]), fmt(v["diff"]) if v["diff"] else "", ratio if v["diff"] else "", style=style)
        console.print(t)
