"""The ``goheap trace`` command group and ``goheap replay``.

::

    goheap trace import INPUT [-o OUT] # INPUT: an allocfreetrace log or a Go execution trace,
                                       # plain or gzip, - for stdin; OUT default: INPUT.trace.npz
    goheap trace info TRACE
    goheap replay TRACE [--gogc N|off] [--mode gc|free] [--gctrace] [--json] [--check] [--policy P]

The group is the click object :data:`trace_group` and the replay command
:data:`replay_command`; the main ``goheap`` CLI adds both with ``main.add_command``. They
also work on their own (``python -m goheap.trace.cli``) and under
:class:`click.testing.CliRunner`. Errors (a malformed log or trace file, an unreadable
file, a trace that cannot be replayed, an output that would overwrite an input) print
one line on stderr and exit with status 2, without a traceback (goheap's one error style,
:mod:`goheap.command`); a truncated log prints a warning on stderr and still writes the
trace. Outputs are written complete or not at all (:mod:`goheap.atomicfile`); Ctrl-C
exits with 130, SIGTERM with 143, and leaves no file behind. Progress bars appear only
when stderr is a terminal.
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

from goheap.atomicfile import PendingFiles
from goheap.command import GOGC_FLAG, GoheapGroup, check_outputs, fail, gogc_setting, on_interrupt
from goheap.errors import HeapError
from goheap.policy_cli import policy_options, resolve_policy
from goheap.report.outputs import RunOutputs, output_options
from goheap.trace.allocfreetrace import ImportResult, import_log_to_file
from goheap.trace.detect import detect_format
from goheap.trace.tracefile import Trace, TraceFormatError, TraceTruncatedWarning

if TYPE_CHECKING:
    from goheap.trace.replay import ReplayResult

#: replay's --mode values (goheap.trace.replay.MODES, spelled out so that the command line
#: loads without the compiled runtime: goheap --help, goheap trace import); a test checks that the two agree
MODES = ("gc", "free")

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


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@click.group(
    "trace",
    cls=GoheapGroup,
    short_help="Import Go allocation logs; describe trace files.",
    epilog="\b\nExamples:\n  goheap trace import prog.log\n  goheap trace info prog.trace.npz",
)
def trace_group() -> None:
    """Import recorded Go programs (allocfreetrace logs, execution traces) and inspect trace files."""


IMPORT_EPILOG = """\b
Examples:
  GODEBUG=allocfreetrace=1 ./prog 2> prog.log && goheap trace import prog.log
  GODEBUG=allocfreetrace=1 ./prog 2>&1 >/dev/null | goheap trace import - -o prog.trace.npz"""


@trace_group.command("import", short_help="Turn an allocfreetrace log into a trace file.", epilog=IMPORT_EPILOG)
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
    stays flat however large it is, and a log's every line is at most 1 MiB. Nothing is
    written if it is malformed; one cut short is imported up to its last complete event,
    with a warning.
    """
    stdin = str(log) == "-"
    if stdin and output is None:
        raise fail("reading the log from standard input needs -o OUTPUT")
    out = output if output is not None else default_output(log)
    total: int | None = None
    if not stdin:
        try:
            st = os.stat(log)
        except OSError as e:
            raise fail(f"cannot read {log}: {(e.strerror or str(e)).lower()}") from None
        total = st.st_size if stat.S_ISREG(st.st_mode) else None
    check_outputs({"the trace file": out}, {"the log": log})
    on_interrupt(f"the import of {'<stdin>' if stdin else log} did not finish; {out} was not written")

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
        raise fail(str(e)) from None
    except OSError as e:
        name = e.filename if getattr(e, "filename", None) else log
        raise fail(f"cannot read or write {name}: {(e.strerror or str(e)).lower()}") from None
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
    from goheap.trace import logscan  # noqa: F401 - the compiled scanner, loaded before the log is read

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


@trace_group.command(
    "info", short_help="Describe a trace file.", epilog="\b\nExample:\n  goheap trace info prog.trace.npz"
)
@click.argument("trace", type=click.Path(dir_okay=False, path_type=Path))
def info_command(trace: Path) -> None:
    """Describe the trace file TRACE: its events, types and functions, and where it came from."""
    try:
        t = Trace.load(trace)
    except TraceFormatError as e:
        raise fail(str(e)) from None
    except OSError as e:
        raise fail(f"cannot read {trace}: {(e.strerror or str(e)).lower()}") from None
    click.echo(t.summary())
    meta = t.meta
    details = [f"format {meta.get('format')} version {meta.get('version')}"]
    if "log_bytes" in meta:
        source = "execution trace" if meta.get("source_format") == "exectrace" else "log"
        details.append(f"imported from {meta['log_bytes'] / 1e6:,.1f} MB of {source}")
    if "log_lines" in meta:
        details.append(f"{meta['log_lines']:,} lines")
    click.echo("; ".join(details) + ".")


# ---------------------------------------------------------------------------- replay


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


REPLAY_EPILOG = """\b
Examples:
  goheap replay prog.trace.npz
  goheap replay prog.trace.npz --gogc 50 --gctrace
  goheap replay prog.trace.npz --report r.html --heap-profile p.pb.gz
  goheap replay prog.trace.npz --policy modern --memory-limit 64MiB"""


@click.command("replay", short_help="Replay a Go program's allocations on the 2013 heap.", epilog=REPLAY_EPILOG)
@click.argument("trace", type=click.Path(path_type=Path))
@click.option(
    "--gogc",
    type=GOGC_FLAG,
    default=None,
    help="goheap's GC percent for the replay: N >= 0 or off (default: $GOGC read as the 2013 runtime reads it, else 100).",
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="gc",
    show_default=True,
    help="gc: a traced free drops the object and goheap's collector frees it; "
    "free: a traced free frees it explicitly.",
)
@click.option(
    "--gctrace",
    is_flag=True,
    help="Print a gctrace line per collection on stderr (also $GOGCTRACE=1 or $GODEBUG=gctrace=1).",
)
@click.option(
    "--gctrace-format",
    type=click.Choice(("seed", "modern")),
    default="seed",
    show_default=True,
    help="seed: the 2013 runtime's 'gc1(1): ...' lines; modern: today's Go's 'gc 1 @0.012s 2%: ...'.",
)
@click.option("--json", "as_json", is_flag=True, help="Print everything as one JSON object.")
@click.option(
    "--check",
    is_flag=True,
    help="Verify that no live object is ever freed, and every heap invariant at the end (slower).",
)
@output_options
@policy_options
def replay_command(
    trace: Path,
    gogc: int | None,
    mode: str,
    gctrace: bool,
    gctrace_format: str,
    as_json: bool,
    check: bool,
    memprofilerate: int | None,
    heap_profile: str | None,
    report: str | None,
    policy: str,
    memory_limit: str | None,
    min_heap: str | None,
) -> None:
    """Replay the allocations of the trace file TRACE on a fresh goheap heap.

    Prints goheap's MemStats (as `goheap run` does), then a comparison with the recorded
    run: its collections against goheap's, the live objects and bytes of both at each
    recorded collection, and both peaks. Make TRACE with `goheap trace import LOG`.

    With --heap-profile and no --memprofilerate, the replay picks the sampling rate so
    that the profile holds about 10,000 samples (Go's 512 KB default, made for programs
    that allocate gigabytes, would leave a short trace's profile nearly empty) and says
    which on stderr; a --memprofilerate that leaves fewer than 1,000 samples is warned about.
    """
    check_outputs({"--report": report, "--heap-profile": heap_profile}, {"the trace": trace})
    resolved = resolve_policy(policy, memory_limit, min_heap)
    try:
        t = Trace.load(trace)
    except TraceFormatError as e:
        hint = ""
        if _looks_like_a_log(trace):
            hint = f"; it looks like an allocfreetrace log: import it first with 'goheap trace import {trace}'"
        raise fail(f"{e}{hint}") from None
    except IsADirectoryError:
        raise fail(f"cannot read {trace}: it is a directory") from None
    except OSError as e:
        raise fail(f"cannot read {trace}: {(e.strerror or str(e)).lower()}") from None

    gogc, source = gogc_setting(gogc)  # the one GOGC parser: strict flag, the seed's reading of $GOGC
    if source.startswith("$GOGC"):
        atoi = ", read as the 2013 runtime's atoi reads it" if source.endswith("reads it") else ""
        gogc_source = f"the GOGC environment variable ({os.environ.get('GOGC')!r}{atoi})"
    else:
        gogc_source = {"--gogc": "--gogc", "default": "the default: no --gogc, no GOGC in the environment"}[source]
    written = [p for p in (report, heap_profile) if p]
    on_interrupt(f"the replay of {trace} did not finish; nothing was written" + (f" ({', '.join(written)})" if written else ""))
    with PendingFiles() as pending:
        text = _replay(t, trace, gogc, gogc_source, mode, gctrace, gctrace_format, as_json, check, memprofilerate, report,
                       heap_profile, pending, resolved)
        pending.commit()
    click.echo(text)


def _replay(t, trace, gogc, gogc_source, mode, gctrace, gctrace_format, as_json, check, memprofilerate, report, heap_profile, pending,
            policy) -> str:
    """Replay ``t``; its report and profile go to ``pending``; returns what to print."""
    from goheap.trace.replay import heap_profile_rate, replay

    if heap_profile:
        memprofilerate, note = heap_profile_rate(t, memprofilerate)
        if note:
            click.echo(f"goheap replay: {note}", err=True)
    outputs = RunOutputs(report, heap_profile, pending)
    kwargs = dict(
        mode=mode,
        gogc=gogc,
        gogc_source=gogc_source,
        gctrace=1 if gctrace else None,
        gctrace_format=gctrace_format,
        trace_stream=sys.stderr,
        check=check,
        memprofilerate=memprofilerate,
        on_tick=outputs.on_tick,
        on_exit=outputs.on_exit,
        policy=policy,
    )
    try:
        if _stderr_is_tty():
            result = _replay_with_progress(t, trace.name, kwargs)
        else:
            result = replay(t, **kwargs)
    except HeapError as e:
        raise fail(str(e)) from None
    if report:
        from goheap.trace.replayreport import replay_figure

        fig, caption = replay_figure(t, result)
        outputs.write_report(
            sections=[("The recorded run and the replay", fig, caption)],
            title=f"replay of {trace.name}",
            subtitle=f"goheap replay {trace} --mode {mode}: the recorded allocations on goheap's model of the February 2013 Go runtime",
            run_info={"trace": str(trace), "mode": mode, "events": f"{result.events:,}", "elapsed": f"{result.seconds:.2f} s"},
        )
    if _stderr_is_tty():
        rate = result.events / result.seconds / 1e6 if result.seconds > 0 else float("inf")
        click.echo(
            f"replayed {result.events:,} events in {result.seconds:.2f} s ({rate:,.1f} M events/s)",
            err=True,
        )
    if as_json:
        return json.dumps(result.to_json())
    return "\n".join(["# MemStats", *result.memstats.go_lines(), *result.comparison_lines()])


def _replay_with_progress(t: Trace, name: str, kwargs: dict) -> ReplayResult:
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
        from goheap.trace.replay import replay

        return replay(t, progress=lambda n: bar.update(task, completed=n), **kwargs)


if __name__ == "__main__":  # pragma: no cover
    trace_group()
