"""The ``goheap`` command line. ``goheap --help`` lists the commands.

Errors a user can make (an unknown workload, a bad argument, a bad GOGC value, a file
that is not a run) print one line on stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

import click

from .errors import HeapError, RaceError
from .policy import PRESETS, SCOPE_NOTE, PolicyError
from .policy_cli import policy_option, policy_options, resolve_policy
from .report.outputs import RunOutputs, output_options
from .trace.cli import replay_command, trace_group

__all__ = ["main"]


class _GogcType(click.ParamType):
    """A GOGC value: a non-negative integer, or ``off``."""

    name = "N|off"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if text == "off":
            return -1
        if text.isdigit():
            return int(text)
        self.fail(f"GOGC must be a non-negative integer or 'off', not {value!r}", param, ctx)


GOGC = _GogcType()


def _fail(command: str, message: str) -> click.exceptions.Exit:
    click.echo(f"goheap {command}: error: {message}", err=True)
    return click.exceptions.Exit(2)


class _Stderr:
    """sys.stderr looked up at each write, so a live progress display can redirect it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _Progress:
    """A progress bar on stderr for runs longer than a second, only on a terminal."""

    DELAY_S = 1.0

    def __init__(self, description: str, enabled: bool):
        self.description = description
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self._progress = None
        self._task = None

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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="goheap")
def main() -> None:
    """The Go runtime's 2013 allocator and garbage collector, runnable."""


@main.command()
@policy_option
def sizeclasses(policy: str) -> None:
    """Print a policy's size classes (the seed's: the 61 of msize.c) in the columns of Go's sizeclasses.go.

    Max waste is the worst case of a span: each object one byte over the previous class, plus the tail.
    """
    try:
        table = resolve_policy(policy).size_classes
    except PolicyError as exc:
        raise _fail("sizeclasses", str(exc)) from None
    out = [
        f"size classes of policy {policy}: {table.describe()}",
        f"{'class':<5}  {'bytes/obj':<9}  {'bytes/span':<10}  {'objects':<7}  {'tail waste':<10}  {'max waste':<9}",
    ]
    for c, size, span, objects, tail, max_waste in table.go_rows():
        out.append(f"{c:5d}  {size:9d}  {span:10d}  {objects:7d}  {tail:10d}  {max_waste:8.2f}%")
    click.echo("\n".join(out))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print every preset's full policy as one JSON object.")
def policies(as_json: bool) -> None:
    """List the policy presets (for --policy), one line each."""
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
  binarytrees [N]     binary-trees of max depth N (default and minimum 6)
  binarytrees-py [N]  the same through the Python API only (slow: small N)
  gcbench             Boehm's GCBench
  churn               2M []byte of random sizes through a 10000-slot ring"""


@main.command(context_settings={"ignore_unknown_options": True}, epilog=WORKLOAD_HELP)
@click.argument("workload")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--gogc", type=GOGC, default=None, help="GC percent (default: $GOGC as the seed reads it, else 100).")
@click.option("--gctrace", is_flag=True, default=False, help="Print the seed's gctrace line per collection on stderr (also $GOGCTRACE=1).")
@click.option("--json", "as_json", is_flag=True, help="Print everything as one JSON object instead.")
@click.option("-o", "--output", "prefix", type=click.Path(dir_okay=False), help="Also write PREFIX.stdout and PREFIX.stderr.")
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
    """Run WORKLOAD on a fresh 2013 Go heap and print what the Go program prints, then its MemStats.

    The gctrace lines go to stderr (with --gctrace or GOGCTRACE=1).
    """
    from .workloads import WorkloadError, run_workload

    for arg in args:
        if arg.startswith("--"):
            raise _fail("run", f"unknown option {arg!r} (options go before the workload's arguments? see --help)")
    try:
        resolved = resolve_policy(policy, memory_limit, min_heap)
    except PolicyError as exc:
        raise _fail("run", str(exc)) from None
    try:
        outputs = RunOutputs(report, heap_profile)
    except ValueError as exc:
        raise _fail("run", str(exc)) from None
    found = []

    def on_exit(heap) -> None:
        if heap.race is not None:
            heap.race.flush()
            found.append((len(heap.race.reports), heap.race.options.exitcode))
        outputs.on_exit(heap)

    config = {} if memprofilerate is None else {"memprofilerate": memprofilerate}
    config["policy"] = resolved
    if race:
        from .race import RaceOptions

        try:
            config["race_options"] = RaceOptions.from_gorace(os.environ.get("GORACE"))
        except ValueError as exc:
            raise _fail("run", str(exc)) from None
        config["race"] = True
    progress = _Progress(f"{workload} {' '.join(args)}".strip(), enabled=_stderr_is_tty() and not as_json)
    try:
        result = run_workload(
            workload,
            list(args),
            gcpercent=gogc,
            gctrace=1 if gctrace else None,
            trace_stream=_Stderr(),
            progress=progress,
            on_tick=outputs.on_tick,
            on_exit=on_exit,
            **config,
        )
    except WorkloadError as exc:
        raise _fail("run", str(exc)) from None
    except RaceError as exc:  # halt_on_error: the report is printed already; exit as Go does
        raise click.exceptions.Exit(config["race_options"].exitcode) from exc
    except HeapError as exc:
        raise _fail("run", f"{type(exc).__name__}: {exc}") from None
    except OSError as exc:
        raise _fail("run", f"cannot write {exc.filename}: {exc.strerror}") from None
    finally:
        progress.close()

    if report:
        command = " ".join(
            ["goheap run"]
            + ([f"--gogc {'off' if gogc < 0 else gogc}"] if gogc is not None else [])
            + ([] if resolved.is_seed else [f"--policy {policy}"])
            + [workload, *args]
        )
        try:
            outputs.write_report(
                title=f"{workload} {' '.join(args)}".strip(),
                subtitle=f"{command}: the Go program run on goheap's model of the February 2013 Go runtime",
                run_info={"workload": workload, "arguments": " ".join(args) or "(none)",
                          "program output": " / ".join(result.lines), "elapsed": f"{result.elapsed_s:.2f} s"},
            )
        except OSError as exc:
            raise _fail("run", f"cannot write {exc.filename}: {exc.strerror}") from None

    if prefix:
        Path(prefix + ".stdout").write_text("\n".join(result.stdout_lines()) + "\n")
        Path(prefix + ".stderr").write_text("".join(line + "\n" for line in result.gctrace_lines()))
    if as_json:
        out = _run_json(result)
        if race:
            out["races"] = found[0][0] if found else 0
        click.echo(json.dumps(out, indent=1))
    else:
        click.echo("\n".join(result.stdout_lines()))
    if found and found[0][0]:
        click.echo(f"Found {found[0][0]} data race(s)", err=True)
        raise click.exceptions.Exit(found[0][1])


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


@main.command()
@click.argument("ref_prefix", type=click.Path(dir_okay=False))
@click.argument("our_prefix", required=False, type=click.Path(dir_okay=False))
@click.option("-w", "--workload", help="Workload to run when OUR_PREFIX is not given (default: from REF_PREFIX's name).")
@click.option("--arg", "wargs", multiple=True, help="A workload argument (repeatable; default: from REF_PREFIX's name).")
@click.option("--gogc", type=GOGC, default=None, help="GOGC for our run (default: from REF_PREFIX's name, else 100).")
@click.option("--check", is_flag=True, help="Exit with status 1 unless NumGC is within one and HeapSys is equal.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as one JSON object.")
def compare(ref_prefix, our_prefix, workload, wargs, gogc, check, as_json) -> None:
    """Line up a goheap run with a real runtime's run (REF_PREFIX.stdout / .stderr).

    Without OUR_PREFIX, runs the matching workload now.
    """
    from .workloads import WorkloadError, run_workload
    from .workloads.seedrun import SeedRun, SeedRunFormatError, compare_runs, parse_run_name

    try:
        ref = SeedRun.from_files(ref_prefix)
    except SeedRunFormatError as exc:
        raise _fail("compare", str(exc)) from None
    if our_prefix:
        try:
            ours = SeedRun.from_files(our_prefix)
        except SeedRunFormatError as exc:
            raise _fail("compare", str(exc)) from None
    else:
        name_args: list[str] = []
        name_gogc = None
        if workload is None or not wargs or gogc is None:
            try:
                workload_name, name_args, name_gogc = parse_run_name(ref_prefix)
            except ValueError as exc:
                if workload is None:
                    raise _fail("compare", f"{exc}; give --workload") from None
                workload_name = workload
        workload = workload or workload_name
        args = list(wargs) or name_args
        # a run named ...-gogc100default had no GOGC in its environment: model that too
        gogc_in_environ = gogc is not None or name_gogc is not None
        if gogc is None:
            gogc = GOGC.convert(name_gogc, None, None) if name_gogc is not None else 100
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
            raise _fail("compare", str(exc)) from None
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
            rel = (b.obj1 - a.obj1) / a.obj1 if a.obj1 else 0.0
            style = "green" if abs(rel) <= cmp.live_tolerance else "bold red"
            cells.append(f"[{style}]{rel:+.1%}[/]")
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


if __name__ == "__main__":
    sys.exit(main())
