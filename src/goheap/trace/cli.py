"""The ``goheap trace`` command group and ``goheap replay``.

::

    goheap trace import INPUT [-o OUT] # INPUT: an allocfreetrace log or a Go execution trace,
                                       # plain or gzip, - for stdin; OUT default: INPUT.trace.npz
    goheap trace info TRACE
    goheap replay TRACE [--gogc N|off] [--mode gc|free] [--gctrace] [--json] [--check]

The group is the click object :data:`trace_group` and the replay command
:data:`replay_command`; the main ``goheap`` CLI adds both with ``main.add_command``. They
also work on their own (``python -m goheap.trace.cli``) and under
:class:`click.testing.CliRunner`. Errors (a malformed log or trace file, an unreadable
file, a trace that cannot be replayed) print one line on stderr and exit with status 2,
without a traceback; a truncated log prints a warning on stderr and still writes the
trace. Progress bars appear only when stderr is a terminal.
"""

from __future__ import annotations

import gzip
import json
import os
import stat
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import click

from goheap.errors import HeapError
from goheap.report.outputs import RunOutputs, output_options
from goheap.trace.allocfreetrace import ImportResult, import_log_to_file
from goheap.trace.detect import detect_format
from goheap.trace.tracefile import Trace, TraceFormatError, TraceTruncatedWarning

if TYPE_CHECKING:
    from goheap.trace.replay import ReplayResult

# goheap.trace.replay.MODES, spelled out so that the command line loads without the compiled
# runtime (goheap --help, goheap trace import); a test checks that the two agree
REPLAY_MODES = ("gc", "free")

__all__ = ["default_output", "replay_command", "trace_group"]


def default_output(log: str | os.PathLike[str]) -> Path:
    """The default trace file for a log: its name without ``.gz``/``.log`` + ``.trace.npz``.

    ``run.log.gz`` → ``run.trace.npz``, ``run.log`` → ``run.trace.npz``, ``t.out`` →
    ``t.trace.npz``, ``run.trace.gz`` → ``run.trace.npz``, ``run`` → ``run.trace.npz``, in
    the input's directory.
    """
    log = Path(log)
    name = log.name
    for suffix in (".gz", ".log", ".txt", ".out", ".trace"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return log.with_name(name + ".trace.npz")


def _fail(message: str, command: str = "goheap trace") -> click.exceptions.Exit:
    click.echo(f"{command}: error: {message}", err=True)
    return click.exceptions.Exit(2)


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@click.group("trace")
def trace_group() -> None:
    """Import recorded Go programs (allocfreetrace logs, execution traces) and inspect trace files."""


@trace_group.command("import")
@click.argument("log", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Trace file to write (default: LOG without .log/.gz, plus .trace.npz; "
    "required when LOG is - for standard input).",
)
def import_command(log: Path, output: Path | None) -> None:
    """Import LOG, a recorded Go program, into a trace file (- reads standard input).

    LOG is told by its content, plain or gzip: a GODEBUG=allocfreetrace=1 log (Go
    1.3-1.21) or a Go execution trace recorded with GODEBUG=traceallocfree=1 (Go 1.23+;
    the file of runtime/trace.Start or go test -trace). The input is streamed: memory
    stays flat however large it is. Nothing is written if it is malformed; one cut short
    is imported up to its last complete event, with a warning.
    """
    stdin = str(log) == "-"
    if stdin and output is None:
        raise _fail("reading the log from standard input needs -o OUTPUT")
    out = output if output is not None else default_output(log)
    total: int | None = None
    if not stdin:
        try:
            st = os.stat(log)
        except OSError as e:
            raise _fail(f"cannot read {log}: {e.strerror or e}") from None
        total = st.st_size if stat.S_ISREG(st.st_mode) else None
    directory = out.parent if str(out.parent) else Path(".")
    if not directory.is_dir():
        raise _fail(f"cannot write {out}: directory {directory} does not exist")

    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TraceTruncatedWarning)
            importer = _importer(log)
            if _stderr_is_tty():
                result = _import_with_progress(importer, log, out, total)
            else:
                result = importer(log, out)
    except TraceFormatError as e:
        raise _fail(str(e)) from None
    except OSError as e:
        name = e.filename if getattr(e, "filename", None) else log
        raise _fail(f"cannot read or write {name}: {e.strerror or e}") from None
    elapsed = time.perf_counter() - start
    for w in caught:
        if issubclass(w.category, TraceTruncatedWarning):
            click.echo(f"goheap trace: warning: {w.message}", err=True)
        else:  # pragma: no cover - pass other warnings through
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    log_bytes = int(result.meta.get("log_bytes", total or 0))
    speed = log_bytes / 1e6 / elapsed if elapsed > 0 else float("inf")
    what = "trace" if result.meta.get("source_format") == "exectrace" else "log"
    click.echo(
        f"{result.summary()} Imported {log_bytes / 1e6:,.1f} MB of {what} in {elapsed:.2f} s "
        f"({speed:,.0f} MB/s) into {out} ({os.path.getsize(out) / 1e6:,.2f} MB)."
    )


def _importer(path: Path):
    """The import function for the input's format, told by its first bytes (see detect_format)."""
    if detect_format(path) == "exectrace":
        from goheap.trace.exectrace import import_exectrace_to_file

        return import_exectrace_to_file
    return import_log_to_file


def _import_with_progress(importer, log: Path, out: Path, total: int | None) -> ImportResult:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    with Progress(
        TextColumn("importing {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn() if total is not None else TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("<stdin>" if str(log) == "-" else log.name, total=total)
        return importer(log, out, progress=lambda n: bar.update(task, completed=n))


@trace_group.command("info")
@click.argument("trace", type=click.Path(dir_okay=False, path_type=Path))
def info_command(trace: Path) -> None:
    """Describe the trace file TRACE."""
    try:
        t = Trace.load(trace)
    except TraceFormatError as e:
        raise _fail(str(e)) from None
    except OSError as e:
        raise _fail(f"cannot read {trace}: {e.strerror or e}") from None
    click.echo(t.summary())
    meta = t.meta
    details = [f"format {meta.get('format')} version {meta.get('version')}"]
    if "log_bytes" in meta:
        details.append(f"imported from {meta['log_bytes'] / 1e6:,.1f} MB of log")
    if "log_lines" in meta:
        details.append(f"{meta['log_lines']:,} lines")
    click.echo("; ".join(details) + ".")


# ---------------------------------------------------------------------------- replay


def _parse_gogc(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    v = value.strip()
    if v == "off" or v.lstrip("-").isdigit():
        from goheap.heap import readgogc

        return -1 if v == "off" or v.startswith("-") else readgogc(v)
    raise click.BadParameter(f"{value!r} is not a percentage or 'off'")


def _looks_like_a_log(path: Path) -> bool:
    """Whether ``path`` starts like an allocfreetrace log (plain or gzip) rather than a trace."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
        if head[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as g:
                head = g.read(4096)
    except (OSError, EOFError):
        return False
    return any(word in head for word in (b"tracealloc(", b"tracefree(", b"tracegc("))


@click.command("replay")
@click.argument("trace", type=click.Path(path_type=Path))
@click.option(
    "--gogc",
    callback=_parse_gogc,
    metavar="N|off",
    help="goheap's GOGC for the replay (default: the GOGC environment variable, else 100).",
)
@click.option(
    "--mode",
    type=click.Choice(REPLAY_MODES),
    default="gc",
    show_default=True,
    help="gc: a traced free drops the object and goheap's collector frees it; "
    "free: a traced free frees it explicitly.",
)
@click.option(
    "--gctrace", is_flag=True, help="Print a gctrace line per collection on stderr (also: GOGCTRACE=1)."
)
@click.option("--json", "as_json", is_flag=True, help="Print everything as one JSON object.")
@click.option(
    "--check",
    is_flag=True,
    help="Verify that no live object is ever freed, and every heap invariant at the end (slower).",
)
@output_options
def replay_command(
    trace: Path,
    gogc: int | None,
    mode: str,
    gctrace: bool,
    as_json: bool,
    check: bool,
    memprofilerate: int | None,
    heap_profile: str | None,
    report: str | None,
) -> None:
    """Replay the allocations of the trace file TRACE on a fresh goheap heap.

    Prints goheap's MemStats (as `goheap run` does), then a comparison with the recorded
    run: its collections against goheap's, the live objects and bytes of both at each
    recorded collection, and both peaks. Make TRACE with `goheap trace import LOG`.
    """
    from goheap.trace.replay import replay

    fail = "goheap replay"
    try:
        t = Trace.load(trace)
    except TraceFormatError as e:
        hint = ""
        if _looks_like_a_log(trace):
            hint = f"; it looks like an allocfreetrace log: import it first with 'goheap trace import {trace}'"
        raise _fail(f"{e}{hint}", fail) from None
    except IsADirectoryError:
        raise _fail(f"cannot read {trace}: it is a directory", fail) from None
    except OSError as e:
        raise _fail(f"cannot read {trace}: {e.strerror or e}", fail) from None

    try:
        outputs = RunOutputs(report, heap_profile)
    except ValueError as e:
        raise _fail(str(e), fail) from None
    kwargs = dict(
        mode=mode,
        gogc=gogc,
        gogc_source="--gogc" if gogc is not None else None,
        gctrace=1 if gctrace else None,
        trace_stream=sys.stderr,
        check=check,
        memprofilerate=memprofilerate,
        on_tick=outputs.on_tick,
        on_exit=outputs.on_exit,
    )
    try:
        if _stderr_is_tty():
            result = _replay_with_progress(t, trace.name, kwargs)
        else:
            result = replay(t, **kwargs)
    except HeapError as e:
        raise _fail(str(e), fail) from None
    except OSError as e:
        raise _fail(f"cannot write {e.filename}: {e.strerror}", fail) from None
    if report:
        try:
            from goheap.trace.replayreport import replay_figure

            fig, caption = replay_figure(t, result)
            outputs.write_report(
                sections=[("The recorded run and the replay", fig, caption)],
                title=f"replay of {trace.name}",
                subtitle=f"goheap replay {trace} --mode {mode}: the recorded allocations on goheap's model of the February 2013 Go runtime",
                run_info={"trace": str(trace), "mode": mode, "events": f"{result.events:,}", "elapsed": f"{result.seconds:.2f} s"},
            )
        except OSError as e:
            raise _fail(f"cannot write {e.filename}: {e.strerror}", fail) from None
    if _stderr_is_tty():
        rate = result.events / result.seconds / 1e6 if result.seconds > 0 else float("inf")
        click.echo(
            f"replayed {result.events:,} events in {result.seconds:.2f} s ({rate:,.1f} M events/s)",
            err=True,
        )
    if as_json:
        click.echo(json.dumps(result.to_json()))
    else:
        click.echo("\n".join(["# MemStats", *result.memstats.go_lines(), *result.comparison_lines()]))


def _replay_with_progress(t: Trace, name: str, kwargs: dict) -> ReplayResult:
    from goheap.trace.replay import replay
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("replaying {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(name, total=len(t))
        return replay(t, progress=lambda n: bar.update(task, completed=n), **kwargs)


if __name__ == "__main__":  # pragma: no cover
    trace_group()
