#!/usr/bin/env python3
"""Run Go programs on a Go toolchain of commit 8a6ff3ab (the oracle) and write their runs.

    python3 tools/oracle_runs.py --goroot /path/to/go-8a6ff3ab [--out tests/data/oracle-runs] [RUN ...]

RUN names a run as the seed runs do: ``binarytrees-N12-gogc25``, ``gcbench-gogc100``,
``binarytrees-N10-gogc100default`` (GOGC left unset); without RUNs, the grid of the
committed oracle runs (binarytrees N=12/16/18, gcbench and churn, each at GOGC 25, 50, 100,
200 and 400). Each run writes ``NAME.stdout`` and ``NAME.stderr`` in the format of
../shared/data/go-seed-runs/runs.

This script does not build the toolchain: point it at one built as ../shared/data/README.md
says. It compiles each program of ../shared/data/go-seed-runs/programs with that toolchain
and runs it exactly as the seed runs were made: as ``./prog ARGS`` from its own directory,
in the clean environment ``env -i PATH=/usr/bin:/bin GOGCTRACE=1 GOMAXPROCS=1 [GOGC=N]``.

Two things besides the environment set how many bytes the runtime allocates for itself,
because it copies strings into the heap: the toolchain's GOROOT as baked into the binary
(``GOROOT_FINAL`` when it was built; ``time``'s init concatenates it into a zoneinfo path, and
every source path of the symbol table starts with it) and the path the program was compiled
from. The seed runs were made with a 12-character GOROOT of two components and a program
path of over 100 characters; this script compiles from a directory padded to the same
length (binarytrees.go's path is 105 characters) and refuses a toolchain whose GOROOT has another length (``--any-goroot`` runs it
anyway).

The 2013 runtime is not quite deterministic: its scavenger goroutine starts a second
thread at a moment that depends on the OS, and the few blocks that thread needs can land
on either side of a collection. Each run is therefore made ``--repeat`` times (default 3)
and the outcome most runs agree on (gctrace and MemStats without times) is written.

To check a toolchain first, remake the seed runs and compare (each line says how many of
the repeats came out exactly as the shared run):

    python3 tools/oracle_runs.py --goroot GOROOT --out /tmp/seed --compare ../shared/data/go-seed-runs/runs \
        binarytrees-N10-gogc100default binarytrees-N10-gogc50 binarytrees-N10-gogc200 \
        binarytrees-N14-gogc100default binarytrees-N14-gogc50 binarytrees-N14-gogc200
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROGRAMS = REPO.parent / "shared" / "data" / "go-seed-runs" / "programs"
DEFAULT_OUT = REPO / "tests" / "data" / "oracle-runs"
GRID_GOGC = (25, 50, 100, 200, 400)
GRID = [f"binarytrees-N{n}-gogc{g}" for n in (12, 16, 18) for g in GRID_GOGC] + [
    f"{w}-gogc{g}" for w in ("gcbench", "churn") for g in GRID_GOGC
]
SEED_GOROOT_LENGTH = 12  # len("/opt/go-2013"), for instance: two components
SOURCE_DIR_LENGTH = 90  # the directory the programs are compiled from: binarytrees.go's path is 105 characters
_NAME = re.compile(r"^(?P<workload>[a-z]+)(?:-N(?P<n>\d+))?-gogc(?P<gogc>\d+|off)(?P<default>default)?$")
_TIMES = re.compile(r": \d+\+\d+\+\d+ ms,")
_VOLATILE = re.compile(r"^(PauseNs\[gc\d+\]|PauseTotalNs|LastGC)=|took \d+ msec|Completed in \d+ msec")


class OracleError(Exception):
    """The toolchain or a run is not usable; the message says why."""


def parse_run(name: str) -> tuple[str, list[str], str | None]:
    """(program, args, GOGC value or None for unset) of a run name."""
    m = _NAME.match(name)
    if not m:
        raise OracleError(f"{name!r} is not a run name like binarytrees-N12-gogc50 or gcbench-gogc100default")
    gogc = None if m["default"] else m["gogc"]
    return m["workload"], [m["n"]] if m["n"] else [], gogc


def baked_goroot(goroot: Path, workdir: Path) -> str:
    """The GOROOT the toolchain bakes into binaries (runtime.GOROOT() with no GOROOT set)."""
    src = workdir / "goroot.go"
    src.write_text('package main\n\nimport (\n\t"fmt"\n\t"runtime"\n)\n\nfunc main() { fmt.Print(runtime.GOROOT()) }\n')
    binary = compile_program(goroot, src, workdir / "goroot")
    return subprocess.run([str(binary)], env={}, capture_output=True, text=True, check=True).stdout


def toolchain_env(goroot: Path) -> dict[str, str]:
    return {"PATH": f"{goroot / 'bin'}:/usr/bin:/bin", "GOROOT": str(goroot), "HOME": os.environ.get("HOME", "/tmp")}


def compile_program(goroot: Path, source: Path, binary: Path) -> Path:
    go = goroot / "bin" / "go"
    if not go.is_file():
        raise OracleError(f"{go} does not exist: --goroot must be a built Go tree")
    proc = subprocess.run(
        [str(go), "build", "-o", str(binary), source.name], cwd=source.parent, env=toolchain_env(goroot), capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise OracleError(f"go build {source} failed:\n{proc.stderr}")
    return binary


def padded_dir(base: Path, program: str) -> Path:
    """A new directory under ``base`` whose path is SOURCE_DIR_LENGTH characters long."""
    prefix = f"{base}/{program}-"
    fill = SOURCE_DIR_LENGTH - len(prefix)
    if fill < 1:
        raise OracleError(f"the temporary directory {base} is too long for a {SOURCE_DIR_LENGTH}-character source directory")
    path = Path(prefix + "p" * fill)
    path.mkdir()
    return path


def run_once(binary_dir: Path, args: list[str], gogc: str | None) -> tuple[str, str]:
    env = {"PATH": "/usr/bin:/bin", "GOGCTRACE": "1", "GOMAXPROCS": "1"}
    if gogc is not None:
        env["GOGC"] = gogc
    proc = subprocess.run(["./prog", *args], cwd=binary_dir, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise OracleError(f"./prog {' '.join(args)} exited with {proc.returncode}:\n{proc.stderr[-2000:]}")
    return proc.stdout, proc.stderr


def outcome(stdout: str, stderr: str) -> tuple[str, str]:
    """What a run decided, without the times it measured."""
    out = "\n".join(line for line in stdout.splitlines() if not _VOLATILE.search(line))
    return out, _TIMES.sub(":", stderr)


def make_run(binary_dir: Path, name: str, out_dir: Path, repeat: int, compare: Path | None) -> str:
    _, args, gogc = parse_run(name)
    results = [run_once(binary_dir, args, gogc) for _ in range(repeat)]
    votes = collections.Counter(outcome(*r) for r in results)
    best, count = votes.most_common(1)[0]
    stdout, stderr = next(r for r in results if outcome(*r) == best)
    for suffix, text in ((".stdout", stdout), (".stderr", stderr)):
        tmp = out_dir / (name + suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(out_dir / (name + suffix))
    report = f"{name}: {stderr.count(chr(10))} collections; {count} of {repeat} runs agree"
    if compare is not None and (compare / (name + ".stdout")).is_file():
        ref = outcome((compare / (name + ".stdout")).read_text(), (compare / (name + ".stderr")).read_text())
        same = sum(1 for r in results if outcome(*r) == ref)
        report += f"; {same} of {repeat} the same as {compare / name}"
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", metavar="RUN", help="run names (default: the committed grid)")
    parser.add_argument("--goroot", type=Path, required=True, help="a Go tree of commit 8a6ff3ab, built")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write the runs (default {DEFAULT_OUT})")
    parser.add_argument("--programs", type=Path, default=PROGRAMS, help="the Go programs (default ../shared/data/go-seed-runs/programs)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, the majority outcome is kept (default 3)")
    parser.add_argument("--compare", type=Path, help="a directory of runs to compare with (e.g. ../shared/data/go-seed-runs/runs)")
    parser.add_argument("--any-goroot", action="store_true", help=f"accept a toolchain whose GOROOT is not {SEED_GOROOT_LENGTH} characters")
    opts = parser.parse_args(argv)
    try:
        runs = opts.runs or GRID
        plan = [(name, parse_run(name)[0]) for name in runs]
        opts.out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="oracle-") as tmp:
            work = Path(tmp)
            goroot = baked_goroot(opts.goroot.resolve(), work)
            if len(goroot) != SEED_GOROOT_LENGTH and not opts.any_goroot:
                raise OracleError(
                    f"the toolchain's GOROOT {goroot!r} is {len(goroot)} characters, the seed runs' {SEED_GOROOT_LENGTH}: "
                    "the runtime's own blocks would differ (--any-goroot to run anyway)"
                )
            built: dict[str, Path] = {}
            for name, program in plan:
                if program not in built:
                    source = opts.programs / f"{program}.go"
                    if not source.is_file():
                        raise OracleError(f"no program {source}")
                    build_dir = padded_dir(work, program)
                    shutil.copy(source, build_dir / source.name)
                    compile_program(opts.goroot.resolve(), build_dir / source.name, build_dir / "prog")
                    built[program] = build_dir
                print(make_run(built[program], name, opts.out, opts.repeat, opts.compare), flush=True)
    except OracleError as exc:
        print(f"oracle_runs: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
