"""Benchmark: starting goheap with its compiled runtime cached, and the commands that need none.

Each command runs ``--rounds`` times in a fresh interpreter (after one run that fills the
cache), measured from outside: CPU time (user + system) and peak RSS; it prints the
medians. The goals: ``import goheap; goheap.Heap().alloc(8)`` in at most 0.3 s of CPU
and 80 MB of RSS after the first Heap(); ``goheap --help`` and the other commands that
need no compiled runtime as cheap as the interpreter with click.

Then it shows what holds the memory of a process that has built one heap: resident
memory by mapping (the LLVM library numba loads, Python's heap, the compiled runtime, ...),
from /proc/self/smaps.

Usage::

    .venv/bin/python bench/bench_startup.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap

HEAP = "import goheap; goheap.Heap().alloc(8)"

COMMANDS = {
    "python (nothing)": [sys.executable, "-c", "pass"],
    "import numba (for scale)": [sys.executable, "-c", "import numba"],
    "import goheap; Heap().alloc(8)": [sys.executable, "-c", HEAP],
    "goheap --help": [sys.executable, "-m", "goheap.cli", "--help"],
    "goheap sizeclasses": [sys.executable, "-m", "goheap.cli", "sizeclasses"],
    "goheap run nosuchworkload": [sys.executable, "-m", "goheap.cli", "run", "nosuchworkload"],
}

WHAT_HOLDS_IT = textwrap.dedent(
    """
    import json, re, goheap
    h = goheap.Heap()
    h.alloc(8)
    rss = {}
    name = None
    for line in open("/proc/self/smaps"):
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            parts = line.split()
            name = parts[5] if len(parts) > 5 else "[anonymous]"
        elif line.startswith("Rss:"):
            rss[name] = rss.get(name, 0) + int(line.split()[1])
    print(json.dumps(rss))
    """
)


# The runs write and reuse bytecode files, as a user's interpreter does: with
# PYTHONDONTWRITEBYTECODE set (some CI and sandbox environments), every start compiles
# goheap's modules from source again, about 0.2 s of CPU that is not goheap's start-up.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure(cmd: list[str]) -> tuple[float, float]:
    """(CPU seconds, peak RSS in MB) of one run."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    opts = parser.parse_args()
    measure([sys.executable, "-c", HEAP])  # fill the cache (and the bytecode files)
    print(f"{'command':<34} {'CPU s':>6} {'peak MB':>8}")
    for name, cmd in COMMANDS.items():
        runs = [measure(cmd) for _ in range(opts.rounds)]
        cpu = statistics.median(r[0] for r in runs)
        mb = statistics.median(r[1] for r in runs)
        print(f"{name:<34} {cpu:6.2f} {mb:8.1f}")
    print("\nresident memory after the first Heap(), by mapping (MB):")
    rss = json.loads(subprocess.run([sys.executable, "-c", WHAT_HOLDS_IT], capture_output=True, text=True, check=True, env=ENV).stdout)
    groups: dict[str, float] = {}
    for mapping, kb in rss.items():
        base = os.path.basename(mapping)
        if "libllvmlite" in base:
            key = "LLVM (libllvmlite, loaded by numba)"
        elif mapping in ("[heap]", "[anonymous]"):
            key = "Python objects and numba's compiled code " + mapping
        elif base.startswith("libpython"):
            key = "the interpreter (libpython)"
        elif ".cpython-" in base or ".libs" in mapping or base.startswith("lib"):
            key = "other shared libraries (numpy, libc, ...)"
        else:
            key = "other (" + base + ")" if base else "other"
        groups[key] = groups.get(key, 0) + kb / 1024
    for key, mb in sorted(groups.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {mb:7.1f}  {key}")
    print(f"  {sum(groups.values()):7.1f}  total")


if __name__ == "__main__":
    main()
