#!/usr/bin/env python3
"""Watch a program run on the 2013 oracle toolchain under gdb: what goheap's process model derives from.

    python3 tools/oracle_trace.py --goroot GOROOT allocs binarytrees 10 > allocs.log
    python3 tools/oracle_trace.py --goroot GOROOT calls gcbench > calls.log
    python3 tools/oracle_trace.py --goroot GOROOT runtime binarytrees 10 > runtime-new.log
    python3 tools/oracle_trace.py --goroot GOROOT runtime churn --entry runtime.makeslice \\
        --callers main.main --result 24 > makeslice.log

``allocs``: the allocations the runtime and the libraries make (start-up, package inits,
inside each library call main makes), their explicit frees, and which the collector
sweeps: the source of goheap.workloads.goprocess. ``calls``: the stack words each library
call of main.* writes below its caller; ``runtime``: those runtime.new (or ``--entry``)
writes, by path: the sources of goheap.workloads.gostack's masks. The work is done by
tools/oracle_gdb.py inside gdb; the program is compiled and run exactly as
tools/oracle_runs.py runs it (same source path length, clean environment, ``./prog``).
Slow: every allocation stops in the debugger (``allocs`` only until main.main).

Like tools/oracle_runs.py this builds nothing but the program: point it at a toolchain
built as ../shared/data/README.md says.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oracle_runs import PROGRAMS, OracleError, compile_program, padded_dir  # noqa: E402

GDB_SCRIPT = Path(__file__).resolve().parent / "oracle_gdb.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("allocs", "calls", "runtime"))
    parser.add_argument("program", help="binarytrees, gcbench or churn (a file of --programs)")
    parser.add_argument("args", nargs="*", help="the program's arguments")
    parser.add_argument("--goroot", type=Path, required=True, help="a Go tree of commit 8a6ff3ab, built")
    parser.add_argument("--programs", type=Path, default=PROGRAMS)
    parser.add_argument("--gogc", help="GOGC for the run (default: unset)")
    parser.add_argument("--entry", default="runtime.new", help="runtime mode: the runtime function to watch")
    parser.add_argument("--callers", default="main.bottomUp", help="runtime mode: its callers to watch, comma-separated")
    parser.add_argument("--result", type=int, default=8, help="runtime mode: the offset of the call's result above the caller's sp")
    opts = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="oracle-") as tmp:
            source = opts.programs / f"{opts.program}.go"
            if not source.is_file():
                raise OracleError(f"no program {source}")
            build_dir = padded_dir(Path(tmp), opts.program)
            (build_dir / source.name).write_bytes(source.read_bytes())
            binary = compile_program(opts.goroot.resolve(), build_dir / source.name, build_dir / "prog")
            out = Path(tmp) / "trace.log"
            env = dict(os.environ, ORACLE_MODE=opts.mode, ORACLE_OUT=str(out), ORACLE_BINARY=str(binary),
                       ORACLE_ENTRY=opts.entry, ORACLE_CALLERS=opts.callers, ORACLE_RESULT=str(opts.result))
            run_env = ["PATH=/usr/bin:/bin", "GOGCTRACE=1", "GOMAXPROCS=1"] + ([f"GOGC={opts.gogc}"] if opts.gogc else [])
            proc = subprocess.run(
                ["gdb", "-batch", "-x", str(GDB_SCRIPT), "--args", "/usr/bin/env", "-i", *run_env, "./prog", *opts.args],
                cwd=build_dir, env=env, capture_output=True, text=True,
            )
            if not out.exists() or proc.returncode != 0 and "exited" not in proc.stdout:
                raise OracleError(f"gdb failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
            sys.stdout.write(out.read_text())
    except (OracleError, FileNotFoundError) as exc:
        print(f"oracle_trace: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
