"""Benchmark: goheap's workloads next to the same Go programs compiled by the local Go toolchain.

For each workload (binarytrees 16 and 18, gcbench, churn) this builds the Go program of
``../shared/data/go-seed-runs/programs`` with ``go build`` (Debian's golang-go, Go 1.19, is
enough) and runs it with GOMAXPROCS=1, alternating with ``goheap run`` of the same
workload, for ``--rounds`` rounds, each process measured from outside (wall time, CPU
time (user + system) and peak RSS, from wait4). It prints the medians and the ratios
goheap/Go (goals: CPU of binarytrees 18 <= 2x; wall time of binarytrees 16 and gcbench
<= 1.5x, churn <= 2x). goheap's figures include its start-up (about a second of CPU:
importing numba and loading the compiled runtime from its cache). The Go toolchain is a
modern one (its concurrent collector is faster than the 2013 one), so the ratio is an
upper bound on the ratio to the seed.

Before the rounds it times ``goheap run binarytrees 10`` once with an empty numba cache
(the first-run compile time) and once with the warm cache.

Usage::

    .venv/bin/python bench/bench_vs_go.py [--rounds N] [--workload NAME ...]

Without ``go`` on PATH it measures goheap alone and says so.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ROOT.parent / "shared" / "data" / "go-seed-runs" / "programs"
GOHEAP = [sys.executable, "-m", "goheap.cli"]
WORKLOADS = {"binarytrees 16": ("binarytrees", ["16"]), "binarytrees 18": ("binarytrees", ["18"]),
             "gcbench": ("gcbench", []), "churn": ("churn", [])}
GOALS = {"binarytrees 16": ("wall", 1.5), "binarytrees 18": ("cpu", 2.0), "gcbench": ("wall", 1.5), "churn": ("wall", 2.0)}


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in KB) of one run of cmd, output discarded."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def build_go(workdir: Path, name: str) -> Path | None:
    if shutil.which("go") is None:
        return None
    src = workdir / name
    src.mkdir()
    shutil.copy(PROGRAMS / f"{name}.go", src / "main.go")
    binary = workdir / f"{name}.bin"
    env = {**os.environ, "GO111MODULE": "off", "GOCACHE": str(workdir / "gocache")}
    subprocess.run(["go", "build", "-o", str(binary), "main.go"], cwd=src, env=env, check=True)
    return binary


def compile_times() -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        cold = measure([*GOHEAP, "run", "binarytrees", "10"], env)[0]
        warm = measure([*GOHEAP, "run", "binarytrees", "10"], env)[0]
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workload", action="append", choices=sorted(WORKLOADS))
    parser.add_argument("--no-compile-time", action="store_true", help="skip the cold-cache run")
    opts = parser.parse_args()
    names = opts.workload or list(WORKLOADS)

    if not opts.no_compile_time:
        cold, warm = compile_times()
        print(f"goheap run binarytrees 10: first run (empty numba cache) {cold:.1f} s, then {warm:.2f} s")

    go_env = {**os.environ, "GOMAXPROCS": "1"}
    with tempfile.TemporaryDirectory() as workdir:
        print(f"{'workload':<16} {'goheap s':>9} {'Go s':>7} {'ratio':>6}   {'goheap cpu':>10} {'Go cpu':>7} {'ratio':>6}"
              f"   {'goheap MB':>9} {'Go MB':>6} {'ratio':>6}   goal")
        binaries: dict[str, Path | None] = {}
        for name in names:
            program, args = WORKLOADS[name]
            if program not in binaries:
                binaries[program] = build_go(Path(workdir), program)
            binary = binaries[program]
            ours_cmd = [*GOHEAP, "run", program, *args]
            measure(ours_cmd)  # warm the caches
            ours, theirs = [], []
            for _ in range(opts.rounds):
                ours.append(measure(ours_cmd))
                if binary is not None:
                    theirs.append(measure([str(binary), *args], go_env))
            kind, goal = GOALS[name]
            wall, cpu, mb = (statistics.median(r[k] for r in ours) for k in range(3))
            mb /= 1024
            if not theirs:
                print(f"{name:<16} {wall:9.2f} {'-':>7} {'-':>6}   {cpu:10.2f} {'-':>7} {'-':>6}   {mb:9.1f}   (go not on PATH)")
                continue
            go_wall, go_cpu, go_mb = (statistics.median(r[k] for r in theirs) for k in range(3))
            go_mb /= 1024
            print(
                f"{name:<16} {wall:9.2f} {go_wall:7.2f} {wall / go_wall:6.2f}   {cpu:10.2f} {go_cpu:7.2f} {cpu / go_cpu:6.2f}"
                f"   {mb:9.1f} {go_mb:6.1f} {mb / go_mb:6.2f}   {kind} <= {goal}x"
            )


if __name__ == "__main__":
    main()
