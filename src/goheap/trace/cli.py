"""The ``goheap trace`` command group: import allocfreetrace logs, describe trace files.

::

    goheap trace import LOG [-o OUT]   # LOG: plain text or gzip, - for stdin; OUT default: LOG.trace.npz
    goheap trace info TRACE

The group is the click object :data:`trace_group`; the main ``goheap`` CLI adds it with
``main.add_command(trace_group)``. It also works on its own (``python -m
goheap.trace.cli``) and under :class:`click.testing.CliRunner`. Errors (a malformed log, an
unreadable file) print one line on stderr and exit with status 2, without a traceback; a
truncated log prints a warning on stderr and still writes the trace.
"""

from __future__ import annotations

import os
import stat
import sys
import time
import warnings
from pathlib import Path

import click

from goheap.trace.allocfreetrace import ImportResult, import_log_to_file
from goheap.trace.tracefile import Trace, TraceFormatError, TraceTruncatedWarning

__all__ = ["default_output", "trace_group"]


def default_output(log: str | os.PathLike[str]) -> Path:
    """The default trace file for a log: its name without ``.gz``/``.log`` + ``.trace.npz``.

    ``run.log.gz`` → ``run.trace.npz``, ``run.log`` → ``run.trace.npz``, ``run`` →
    ``run.trace.npz``, in the log's directory.
    """
    log = Path(log)
    name = log.name
    for suffix in (".gz", ".log", ".txt"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return log.with_name(name + ".trace.npz")


def _fail(message: str) -> click.exceptions.Exit:
    click.echo(f"goheap trace: error: {message}", err=True)
    return click.exceptions.Exit(2)


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@click.group("trace")
def trace_group() -> None:
    """Import Go GODEBUG=allocfreetrace=1 logs and inspect trace files."""


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
    """Import the allocfreetrace log LOG (plain text or gzip; - for stdin) into a trace file.

    The log is streamed: memory stays flat however large it is. Nothing is written if
    the log is malformed; a log cut short mid-event is imported up to its last complete
    event, with a warning.
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
            if _stderr_is_tty():
                result = _import_with_progress(log, out, total)
            else:
                result = import_log_to_file(log, out)
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
    click.echo(
        f"{result.summary()} Imported {log_bytes / 1e6:,.1f} MB of log in {elapsed:.2f} s "
        f"({speed:,.0f} MB/s) into {out} ({os.path.getsize(out) / 1e6:,.2f} MB)."
    )


def _import_with_progress(log: Path, out: Path, total: int | None) -> ImportResult:
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
        return import_log_to_file(log, out, progress=lambda n: bar.update(task, completed=n))


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


if __name__ == "__main__":  # pragma: no cover
    trace_group()
