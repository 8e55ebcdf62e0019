"""Benchmark: goheap's workloads next to the same Go programs compiled by the local Go toolchain.

For each workload (binarytrees 16, gcbench, churn) this builds the Go program of
``../shared/data/go-seed-runs/programs`` with ``go build`` (Debian's golang-go is enough)
and runs it with GOMAXPROCS=1, alternating with ``goheap run`` of the same workload, for
``--rounds`` rounds, each process measured from outside (wall time, and peak RSS from
wait4). It prints the medians and the ratio goheap/Go of wall time and peak RSS (goals:
binarytrees and gcbench <= 1.5x, churn <= 2x). The Go toolchain is a modern one (its
concurrent collector is faster than the 2013 one), so the ratio is an upper bound on the
ratio to the seed.

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
WORKLOADS = {"binarytrees": ["16"], "gcbench": [], "churn": []}
GOALS = {"binarytrees": 1.5, "gcbench": 1.5, "churn": 2.0}


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """(wall seconds, peak RSS in KB) of one run of cmd, output discarded."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}")
    return wall, usage.ru_maxrss


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
        cold, _ = measure([*GOHEAP, "run", "binarytrees", "10"], env)
        warm, _ = measure([*GOHEAP, "run", "binarytrees", "10"], env)
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
        print(f"{'workload':<16} {'goheap s':>9} {'Go s':>7} {'ratio':>6} {'goal':>5}   {'goheap MB':>9} {'Go MB':>6} {'ratio':>6}")
        for name in names:
            binary = build_go(Path(workdir), name)
            ours_cmd = [*GOHEAP, "run", name, *WORKLOADS[name]]
            measure(ours_cmd)  # warm the caches
            ours, theirs = [], []
            for _ in range(opts.rounds):
                ours.append(measure(ours_cmd))
                if binary is not None:
                    theirs.append(measure([str(binary), *WORKLOADS[name]], go_env))
            t_ours = statistics.median(w for w, _ in ours)
            m_ours = statistics.median(m for _, m in ours) / 1024
            if not theirs:
                print(f"{name:<16} {t_ours:9.2f} {'-':>7} {'-':>6} {GOALS[name]:5.1f}   {m_ours:9.1f}   (go not on PATH)")
                continue
            t_go = statistics.median(w for w, _ in theirs)
            m_go = statistics.median(m for _, m in theirs) / 1024
            print(
                f"{name:<16} {t_ours:9.2f} {t_go:7.2f} {t_ours / t_go:6.2f} {GOALS[name]:5.1f}   "
                f"{m_ours:9.1f} {m_go:6.1f} {m_ours / m_go:6.2f}"
            )


if __name__ == "__main__":
    main()
