"""The ``goheap`` command line. ``goheap --help`` lists the commands; each has an example.

Every error (a bad argument, an unknown workload, a file that cannot be read or written)
is one line, ``goheap CMD: error: ...``, on stderr with exit status 2; Ctrl-C exits with
130 and SIGTERM with 143 after one line saying what was lost (see :mod:`goheap.command`).
Output files are checked before any work and appear complete or not at all: an
interrupted or failed command writes none of them.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .atomicfile import PendingFiles
from .command import GOGC_FLAG, GoheapGroup, check_outputs, describe_gogc, fail, gogc_setting, on_interrupt
from .policy_cli import policy_option, policy_options, resolve_policy
from .report.outputs import RunOutputs, output_options
from .sweep.cli import diff_command, sweep_command
from .trace.cli import replay_command, trace_group

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["main"]

#: Kept here rather than imported, so that ``--help`` does not load the compiled runtime;
#: a test checks it against ``goheap._runtime.gctrace.GCTRACE_FORMATS``.
GCTRACE_FORMATS = ("seed", "modern")


class _Stderr:
    """sys.stderr looked up at each write, so a live progress display can redirect it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _Discard:
    """A trace stream that keeps nothing (gctrace measured for -o, not printed)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class _Progress:
    """A progress bar on stderr for runs longer than a second, only on a terminal."""

    DELAY_S = 1.0

    def __init__(self, description: str, enabled: bool):
        self.description = description
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, fraction: float) -> None:
        if not self.enabled:
            return
        if self._progress is None:
            if time.perf_counter() - self.t0 < self.DELAY_S:
                return
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=1.0)
        assert self._task is not None  # added with the bar
        self._progress.update(self._task, completed=min(max(fraction, 0.0), 1.0))

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


MAIN_EPILOG = """\b
Examples:
  goheap run binarytrees 16 --gctrace     the seed's binary-trees with its gctrace
  goheap trace import prog.log            a GODEBUG=allocfreetrace=1 log -> prog.trace.npz
  goheap replay prog.trace.npz            its allocations on the 2013 heap

Errors exit with status 2, Ctrl-C with 130, SIGTERM with 143."""


@click.group(cls=GoheapGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=MAIN_EPILOG)
@click.version_option(
    package_name="goheap",
    prog_name="goheap",
    message="%(prog)s %(version)s: the Go runtime's allocator and collector at commit 8a6ff3ab (February 2013)",
)
def main() -> None:
    """The Go runtime's 2013 allocator and garbage collector, runnable.

    Runs ports of Go programs on a re-implementation of the February 2013 runtime's heap,
    replays the allocations of real Go programs, and compares both with real runs.
    """


@main.command(
    short_help="Print a policy's size classes (the seed's: the 61 of msize.c).",
    epilog="\b\nExamples:\n  goheap sizeclasses | head -5\n  goheap sizeclasses --policy go1.27-classes",
)
@policy_option
def sizeclasses(policy: str) -> None:
    """Print a policy's size classes (the seed's: the 61 of msize.c) in the columns of Go's
    sizeclasses.go: class, bytes per object, bytes per span, objects per span, tail waste
    and max waste (the worst case of a span: each object one byte over the previous class,
    plus the tail), one class a line."""
    table = resolve_policy(policy).size_classes
    out = [
        f"size classes of policy {policy}: {table.describe()}",
        f"{'class':<5}  {'bytes/obj':<9}  {'bytes/span':<10}  {'objects':<7}  {'tail waste':<10}  {'max waste':<9}",
    ]
    for c, size, span, objects, tail, max_waste in table.go_rows():
        out.append(f"{c:5d}  {size:9d}  {span:10d}  {objects:7d}  {tail:10d}  {max_waste:8.2f}%")
    click.echo("\n".join(out))


@main.command(
    short_help="List the policy presets (for --policy), one line each.",
    epilog="\b\nExamples:\n  goheap policies\n  goheap policies --json",
)
@click.option("--json", "as_json", is_flag=True, help="Print every preset's full policy as one JSON object.")
def policies(as_json: bool) -> None:
    """List the policy presets for --policy, one line each, then what no policy changes."""
    from .policy import PRESETS, SCOPE_NOTE

    if as_json:
        click.echo(json.dumps({name: p.to_dict() for name, p in PRESETS.items()}, indent=1))
        return
    width = max(len(name) for name in PRESETS)
    for name, p in PRESETS.items():
        click.echo(f"{name:<{width}}  {p.description}")
    click.echo(SCOPE_NOTE)


# Kept static so that ``--help`` does not load the compiled runtime; a test checks it against WORKLOADS.
WORKLOAD_HELP = """\b
Workloads (ports of the seed runs' programs):
  binarytrees [N]     binary-trees of max depth N, at most 31; N below 6 runs depth 6,
                      as the Go program does (so binarytrees -5 is binarytrees 6)
  binarytrees-py [N]  the same through the Python API only (slow: small N)
  gcbench             Boehm's GCBench
  churn               2M []byte of random sizes through a 10000-slot ring"""

RUN_EPILOG = """\b
Output: the program's own lines on stdout, then a one-line summary (collections,
pauses, peak heap, HeapSys, time, GOGC and where it came from); --memstats prints
the seed runs' full MemStats block instead, -o writes it to PREFIX.stdout.
An interrupted run (Ctrl-C: status 130, SIGTERM: 143) writes no file at all.

\b
Examples:
  goheap run binarytrees 16 --gctrace
  GODEBUG=gctrace=1 goheap run gcbench --gctrace-format modern
  goheap run churn --report churn.html --heap-profile churn.pb.gz
  goheap run --policy modern --memory-limit 64MiB gcbench
  goheap run binarytrees 14 --gogc 50 -o bt14 && goheap compare bt14 ../shared/data/go-seed-runs/runs/binarytrees-N14-gogc50"""


@main.command(
    context_settings={"ignore_unknown_options": True},
    epilog=WORKLOAD_HELP + "\n\n" + RUN_EPILOG,
    short_help="Run a Go program's port on a fresh 2013 heap.",
)
@click.argument("workload")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--gogc", type=GOGC_FLAG, default=None,
              help="GC percent: N >= 0, or off (default: $GOGC read as the 2013 runtime reads it, else 100).")
@click.option("--gctrace", is_flag=True, default=False,
              help="Print a trace line per collection on stderr (also $GOGCTRACE=1 or $GODEBUG=gctrace=1).")
@click.option("--gctrace-format", type=click.Choice(GCTRACE_FORMATS), default="seed", show_default=True,
              help="seed: the 2013 runtime's 'gc1(1): ...' lines; modern: today's Go's 'gc 1 @0.012s 2%: ...'.")
@click.option("--memstats", is_flag=True, help="Print the seed runs' full MemStats block instead of the summary.")
@click.option("--json", "as_json", is_flag=True, help="Print everything as one JSON object instead.")
@click.option("-o", "--output", "prefix", metavar="PREFIX",
              help="Also write PREFIX.stdout (output and MemStats) and PREFIX.stderr (seed-format gctrace), "
                   "the seed runs' files that goheap compare reads.")
@output_options
@policy_options
@click.option("--race", is_flag=True, default=False,
              help="Race mode (go run -race): check every heap access for data races; options from $GORACE. "
                   "Exits with status 66 (GORACE exitcode) when races were found.")
def run(
    workload: str,
    args: tuple[str, ...],
    gogc: int | None,
    gctrace: bool,
    gctrace_format: str,
    memstats: bool,
    as_json: bool,
    prefix: str | None,
    memprofilerate: int | None,
    heap_profile: str | None,
    report: str | None,
    policy: str,
    memory_limit: str | None,
    min_heap: str | None,
    race: bool,
) -> None:
    """Run WORKLOAD on a fresh 2013 Go heap: print what the Go program prints, then a summary.

    The gctrace lines go to stderr (with --gctrace, GOGCTRACE=1 or GODEBUG=gctrace=1).
    """
    for arg in args:
        if arg.startswith("--"):
            raise fail(f"unknown option {arg!r} (options go before the workload's arguments? see --help)")
    stdout_file = stderr_file = None
    if prefix:
        stdout_file, stderr_file = prefix + ".stdout", prefix + ".stderr"
    check_outputs([("--report", report), ("--heap-profile", heap_profile), ("-o", stdout_file), ("-o", stderr_file)])

    from .workloads import WorkloadError, get_workload, run_workload

    try:
        get_workload(workload).parse_args(list(args))
    except (WorkloadError, ValueError) as exc:
        raise fail(str(exc)) from None
    gogc_value, gogc_source = gogc_setting(gogc)
    config: dict[str, Any] = {} if memprofilerate is None else {"memprofilerate": memprofilerate}  # HeapConfig fields
    config["policy"] = resolved = resolve_policy(policy, memory_limit, min_heap)
    if race:
        from .race import RaceOptions

        try:
            config["race_options"] = RaceOptions.from_gorace(os.environ.get("GORACE"))
        except ValueError as exc:
            raise fail(str(exc)) from None
        config["race"] = True
    trace_level, trace_stream = _gctrace_setting(gctrace, measure=prefix is not None)
    written = [p for p in (report, heap_profile, stdout_file, stderr_file) if p]
    title = f"{workload} {' '.join(args)}".strip()
    on_interrupt(f"{title} did not finish; nothing was written" + (f" ({', '.join(written)})" if written else ""))

    with PendingFiles() as pending:
        outputs = RunOutputs(report, heap_profile, pending)
        found = []

        def on_exit(heap) -> None:
            if heap.race is not None:
                heap.race.flush()
                found.append((len(heap.race.reports), heap.race.options.exitcode))
            outputs.on_exit(heap)

        from .errors import RaceError

        progress = _Progress(title, enabled=_stderr_is_tty() and not as_json)
        try:
            result = run_workload(
                workload,
                list(args),
                gcpercent=gogc_value,
                gctrace=trace_level,
                gctrace_format=gctrace_format,
                trace_stream=trace_stream,
                progress=progress,
                on_tick=outputs.on_tick,
                on_exit=on_exit,
                gogc_in_environ=gogc is not None or "GOGC" in os.environ,
                **config,
            )
        except WorkloadError as exc:
            raise fail(str(exc)) from None
        except RaceError as exc:  # halt_on_error: the report is printed already; exit as Go does
            raise click.exceptions.Exit(config["race_options"].exitcode) from exc
        finally:
            progress.close()

        if report:
            command = " ".join(
                ["goheap run"]
                + ([f"--gogc {'off' if gogc < 0 else gogc}"] if gogc is not None else [])
                + ([] if resolved.is_seed else [f"--policy {policy}"])
                + [workload, *args]
            )
            outputs.write_report(
                title=title,
                subtitle=f"{command}: the Go program run on goheap's model of the February 2013 Go runtime",
                run_info={"workload": workload, "arguments": " ".join(args) or "(none)",
                          "program output": " / ".join(result.lines), "elapsed": f"{result.elapsed_s:.2f} s",
                          "GOGC": describe_gogc(gogc_value, gogc_source)},
            )
        if prefix:
            assert stdout_file is not None and stderr_file is not None  # set with prefix
            with pending.open(stdout_file, "w") as f:
                f.write("\n".join(result.stdout_lines()) + "\n")
            with pending.open(stderr_file, "w") as f:
                f.write("".join(line + "\n" for line in result.gctrace_lines()))
        pending.commit()

    if as_json:
        out = _run_json(result)
        out["gogc"] = {"value": gogc_value, "source": gogc_source}
        if race:
            out["races"] = found[0][0] if found else 0
        click.echo(json.dumps(out, indent=1))
    elif memstats:
        click.echo("\n".join(result.stdout_lines()))
    else:
        click.echo("\n".join([*result.lines, run_summary(result, describe_gogc(gogc_value, gogc_source))]))
    if found and found[0][0]:
        click.echo(f"Found {found[0][0]} data race(s)", err=True)
        raise click.exceptions.Exit(found[0][1])


def _gctrace_setting(flag: bool, *, measure: bool):
    """(gctrace level, stream) for a run: the flag or the environment's level, printed on stderr.

    With ``measure`` (-o: the seed runs were made with GOGCTRACE=1, which also measures
    each collection's starting heap) a run without tracing still measures, printing nothing.
    """
    from ._runtime.gctrace import gctrace_level_from_environment

    level = 1 if flag else gctrace_level_from_environment(os.environ)
    if level > 0:
        return level, _Stderr()
    if measure:
        return 1, _Discard()
    return 0, _Stderr()


def run_summary(result, gogc: str) -> str:
    """The line ``goheap run`` prints after the program's output by default."""
    from ._runtime import layout as L

    ms = result.memstats.to_go()
    rows = result.gctrace
    pauses = [int(r[L.TR_PAUSE_NS]) for r in rows]
    peak = max([ms["HeapAlloc"], *(int(r[L.TR_HEAP0]) for r in rows), *(int(r[L.TR_GOAL]) for r in rows)])
    return (
        f"# goheap: {ms['NumGC']} collection{'' if ms['NumGC'] == 1 else 's'}, pause total {ms['PauseTotalNs'] / 1e6:.1f} ms"
        f" (max {max(pauses, default=0) / 1e6:.1f} ms), peak heap {_mb(peak)}, HeapSys {_mb(ms['HeapSys'])},"
        f" {result.elapsed_s:.2f} s; {gogc}" + ("" if result.policy.is_seed else f"; policy {result.policy.name}")
    )


def _mb(nbytes: int) -> str:
    return f"{nbytes / (1 << 20):.1f} MB"


def _run_json(result) -> dict:
    ms = result.memstats.to_go()
    return {
        "workload": result.workload,
        "args": result.args,
        "output": result.lines,
        "memstats": ms,
        "gctrace": result.gctrace_lines(),
        "policy": result.policy.to_dict(),
        "elapsed_s": round(result.elapsed_s, 6),
    }


COMPARE_EPILOG = """\b
Examples:
  goheap compare ../shared/data/go-seed-runs/runs/binarytrees-N14-gogc50
  goheap run binarytrees 14 --gogc 50 -o ours && goheap compare REF ours --check"""


@main.command(short_help="Line up a goheap run with a real runtime's run.", epilog=COMPARE_EPILOG)
@click.argument("ref_prefix", type=click.Path(dir_okay=False))
@click.argument("our_prefix", required=False, type=click.Path(dir_okay=False))
@click.option("-w", "--workload", help="Workload to run when OUR_PREFIX is not given (default: from REF_PREFIX's name).")
@click.option("--arg", "wargs", multiple=True, help="A workload argument (repeatable; default: from REF_PREFIX's name).")
@click.option("--gogc", type=GOGC_FLAG, default=None, help="GOGC for our run: N >= 0 or off (default: from REF_PREFIX's name, else 100).")
@click.option("--check", is_flag=True, help="Exit with status 1 unless NumGC is within one and HeapSys is equal.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as one JSON object.")
def compare(ref_prefix, our_prefix, workload, wargs, gogc, check, as_json) -> None:
    """Line up a goheap run with a real runtime's run (REF_PREFIX.stdout and .stderr).

    Without OUR_PREFIX (files written by goheap run -o), runs the matching workload now.
    """
    from .workloads import WorkloadError, run_workload
    from .workloads.seedrun import SeedRun, SeedRunFormatError, compare_runs, parse_run_name

    try:
        ref = SeedRun.from_files(ref_prefix)
    except SeedRunFormatError as exc:
        raise fail(str(exc)) from None
    if our_prefix:
        try:
            ours = SeedRun.from_files(our_prefix)
        except SeedRunFormatError as exc:
            raise fail(str(exc)) from None
    else:
        name_args: list[str] = []
        name_gogc = None
        if workload is None or not wargs or gogc is None:
            try:
                workload_name, name_args, name_gogc = parse_run_name(ref_prefix)
            except ValueError as exc:
                if workload is None:
                    raise fail(f"{exc}; give --workload") from None
                workload_name = workload
        workload = workload or workload_name
        args = list(wargs) or name_args
        # a run named ...-gogc100default had no GOGC in its environment: model that too
        gogc_in_environ = gogc is not None or name_gogc is not None
        if gogc is None:
            gogc = GOGC_FLAG.convert(name_gogc, None, None) if name_gogc is not None else 100
        on_interrupt(f"the run of {workload} {' '.join(args)} did not finish; nothing was compared")
        progress = _Progress(f"{workload} {' '.join(args)}".strip(), enabled=_stderr_is_tty() and not as_json)
        try:
            # the reference runs were made with GOGCTRACE=1, which also measures each
            # collection's starting heap and objects: run the same way, trace discarded
            result = run_workload(
                workload,
                args,
                gcpercent=gogc,
                gctrace=1,
                trace_stream=io.StringIO(),
                progress=progress,
                gogc_in_environ=gogc_in_environ,
            )
        except WorkloadError as exc:
            raise fail(str(exc)) from None
        finally:
            progress.close()
        ours = result.to_seed_run()

    cmp = compare_runs(ref, ours)
    if as_json:
        click.echo(json.dumps(_compare_json(cmp), indent=1))
    else:
        _print_comparison(cmp, ref_prefix, our_prefix or "goheap")
    if check and not (cmp.numgc_ok and cmp.heap_sys_ok):
        raise click.exceptions.Exit(1)


def _compare_json(cmp) -> dict:
    return {
        "summary": {k: {"ref": a, "ours": b} for k, a, b in cmp.summary_rows()},
        "numgc_ok": cmp.numgc_ok,
        "heap_sys_ok": cmp.heap_sys_ok,
        "live_within_1pct": cmp.live_within(),
        "gcs": [
            {"gc": a.numgc, "ref": [a.heap0_mb, a.heap1_mb, a.obj0, a.obj1], "ours": [b.heap0_mb, b.heap1_mb, b.obj0, b.obj1]}
            for a, b in zip(cmp.ref.gcs, cmp.ours.gcs)
        ],
    }


def _print_comparison(cmp, ref_name: str, our_name: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    summary = Table(title="MemStats", title_justify="left")
    summary.add_column("field")
    summary.add_column(Path(ref_name).name, justify="right")
    summary.add_column(Path(our_name).name, justify="right")
    summary.add_column("diff", justify="right")
    for key, a, b in cmp.summary_rows():
        if a is None or b is None:
            summary.add_row(key, str(a), str(b), "")
            continue
        diff = b - a
        bad = (key == "NumGC" and abs(diff) > 1) or (key == "HeapSys" and diff != 0)
        style = "bold red" if bad else ("yellow" if diff else "green")
        rel = f" ({diff / a:+.1%})" if a and diff else ""
        summary.add_row(key, f"{a:,}", f"{b:,}", f"[{style}]{diff:+,}{rel}[/]")
    console.print(summary)

    gcs = Table(title="Collections: heap MB and live objects before -> after", title_justify="left")
    for col in ("gc", "ref heap", "ours heap", "ref objects", "ours objects", "live diff"):
        gcs.add_column(col, justify="right")
    for i in range(max(len(cmp.ref.gcs), len(cmp.ours.gcs))):
        a = cmp.ref.gcs[i] if i < len(cmp.ref.gcs) else None
        b = cmp.ours.gcs[i] if i < len(cmp.ours.gcs) else None
        cells = [str(i + 1)]
        cells.append(f"{a.heap0_mb} -> {a.heap1_mb}" if a else "")
        cells.append(f"{b.heap0_mb} -> {b.heap1_mb}" if b else "")
        cells.append(f"{a.obj0} -> {a.obj1}" if a else "")
        cells.append(f"{b.obj0} -> {b.obj1}" if b else "")
        if a and b:
            live_rel = (b.obj1 - a.obj1) / a.obj1 if a.obj1 else 0.0
            style = "green" if abs(live_rel) <= cmp.live_tolerance else "bold red"
            cells.append(f"[{style}]{live_rel:+.1%}[/]")
        else:
            cells.append("[bold red]missing[/]")
        gcs.add_row(*cells)
    console.print(gcs)
    a, b = cmp.numgc
    console.print(
        f"NumGC {a} vs {b}: {'ok' if cmp.numgc_ok else 'DIFFERS'}; "
        f"HeapSys {'equal' if cmp.heap_sys_ok else 'DIFFERS'}; "
        f"live objects within 1% at {cmp.live_within():.0%} of the collections"
    )


main.add_command(trace_group)
main.add_command(replay_command)
main.add_command(sweep_command)
main.add_command(diff_command)


if __name__ == "__main__":
    sys.exit(main())
