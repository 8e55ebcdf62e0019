"""Benchmark: the first run on a new machine, when goheap compiles its runtime.

Runs ``goheap run binarytrees 16`` twice with an empty cache directory of its own
(``GOHEAP_CACHE_DIR``): the first run compiles the runtime (on every core: see
``goheap._runtime.prepare``) and caches it, the second loads it. Each is measured from
outside, children included (wall time, CPU time, peak RSS). The goal for the first run is
30 s of wall time on a 2-core machine with nothing else running.

``--jobs`` compiles each of a heap's compile jobs (``goheap._runtime.prepare.heap_jobs``)
alone, in a fresh process and an empty cache: its CPU time and how many functions it
compiles (the figures prepare uses to share the jobs out and to draw its progress bar).

``--profile`` then compiles the same again in this process, in a third empty cache, one
job after another, and tables where the compile CPU goes: per compiled function
(exclusive of the functions it compiled in turn) the time numba spends typing and
lowering it, and LLVM optimising and generating its machine code; and per phase in total.

Usage::

    .venv/bin/python bench/bench_compile.py [--n 16] [--jobs] [--profile] [--top 25]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """(wall s, CPU s of the process and its children, peak RSS in MB, stderr) of one run."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024, err


def first_and_second_run(n: int) -> None:
    cmd = [sys.executable, "-m", "goheap.cli", "run", "binarytrees", str(n)]
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | {"GOHEAP_CACHE_DIR": cache}
        cold = measure(cmd, env)
        warm = measure(cmd, env)
    print(f"goheap run binarytrees {n}, {os.cpu_count()} cores:")
    print(f"  first run (empty cache): {cold[0]:6.1f} s wall, {cold[1]:6.1f} s CPU, peak {cold[2]} MB   (goal: 30 s wall)")
    print(f"  second run (cached):     {warm[0]:6.1f} s wall, {warm[1]:6.1f} s CPU, peak {warm[2]} MB")
    print("  what the first run said on stderr:")
    for line in cold[3].splitlines():
        if line.startswith("goheap:"):
            print(f"    {line}")


JOB_ALONE = """
import json, os, sys, tempfile, time
os.environ["GOHEAP_CACHE_DIR"] = tempfile.mkdtemp(prefix="goheap-job-")
from numba.core import event
from goheap._runtime import prepare
job = [j for j in prepare.heap_jobs(race_mode=True, nproc=2) if j.name == sys.argv[1]][0]
count = [0]
class Count(event.Listener):
    def on_start(self, ev): count[0] += 1
    def on_end(self, ev): pass
t0 = time.process_time()
with event.install_listener("numba:compile", Count()):
    prepare._run(job)
print(json.dumps([time.process_time() - t0, count[0]]))
"""


def jobs_alone() -> None:
    """Each compile job alone: CPU seconds and functions compiled (against what prepare assumes)."""
    from goheap._runtime.prepare import heap_jobs

    print(f"\n{'job':<26} {'CPU s':>6} {'assumed':>8} {'functions':>10} {'assumed':>8}")
    for job in heap_jobs(race_mode=True, nproc=2):
        env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "GOHEAP_CACHE_DIR")}
        out = subprocess.run([sys.executable, "-c", JOB_ALONE, job.name], env=env, capture_output=True, text=True, check=True)
        seconds, functions = json.loads(out.stdout.splitlines()[-1])
        print(f"{job.name:<26} {seconds:6.1f} {job.seconds:8.1f} {functions:10d} {job.functions:8d}")


def profile(top: int) -> None:
    """Compile every job of a heap in this process, into an empty cache, timing numba's phases."""
    cache = tempfile.mkdtemp(prefix="goheap-compile-")
    os.environ["GOHEAP_CACHE_DIR"] = cache
    from numba.core import codegen, event

    from goheap._runtime import prepare

    cpu = time.process_time
    stack: list[list] = []  # [signature, start, time of nested compiles]
    rows: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

    def current() -> str:
        return stack[-1][0] if stack else "(outside any function)"

    class Compiles(event.Listener):
        def on_start(self, ev):
            d, args = ev.data["dispatcher"], ev.data["args"]
            name = f"{d.py_func.__module__}.{d.py_func.__qualname__}"
            stack.append([f"{name}({', '.join(type(a).__name__ if len(str(a)) > 30 else str(a) for a in args)})", cpu(), 0.0])

        def on_end(self, ev):
            sig, t0, nested = stack.pop()
            dt = cpu() - t0
            rows[sig]["compiles"] += 1
            rows[sig]["exclusive"] += dt - nested
            if stack:
                stack[-1][2] += dt

    def timed(cls, method: str, phase: str) -> None:
        original = getattr(cls, method)

        def wrapper(self, *a, **k):
            t0 = cpu()
            try:
                return original(self, *a, **k)
            finally:
                rows[current()][phase] += cpu() - t0

        setattr(cls, method, wrapper)

    timed(codegen.CPUCodeLibrary, "_optimize_functions", "llvm_opt")
    timed(codegen.CPUCodeLibrary, "_optimize_final_module", "llvm_opt")
    timed(codegen.JITCodeLibrary, "_finalize_specific", "machine_code")
    t0 = cpu()
    with event.install_listener("numba:compile", Compiles()):
        for job in prepare.heap_jobs(race_mode=False, nproc=1):
            prepare._run(job)
    total = cpu() - t0
    for r in rows.values():
        r["typing_lowering"] = r["exclusive"] - r["llvm_opt"] - r["machine_code"]
    sums = collections.Counter()
    for r in rows.values():
        sums.update(r)
    print(f"\ncompiling a heap's jobs in one process: {total:.1f} s CPU, {int(sums['compiles'])} compiles of {len(rows)} signatures")
    print(f"  typing and lowering (numba, Python) {sums['typing_lowering']:6.1f} s")
    print(f"  LLVM optimisation                   {sums['llvm_opt']:6.1f} s")
    print(f"  machine code generation             {sums['machine_code']:6.1f} s")
    print(f"\n{'CPU s':>6} {'numba':>6} {'opt':>6} {'code':>6}  function (exclusive of what it compiled in turn)")
    for sig, r in sorted(rows.items(), key=lambda kv: -kv[1]["exclusive"])[:top]:
        print(f"{r['exclusive']:6.2f} {r['typing_lowering']:6.2f} {r['llvm_opt']:6.2f} {r['machine_code']:6.2f}  {sig[:110]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--jobs", action="store_true", help="also time each compile job alone")
    parser.add_argument("--profile", action="store_true", help="also table where the compile CPU goes")
    parser.add_argument("--top", type=int, default=25)
    opts = parser.parse_args()
    first_and_second_run(opts.n)
    if opts.jobs:
        jobs_alone()
    if opts.profile:
        profile(opts.top)


if __name__ == "__main__":
    main()
