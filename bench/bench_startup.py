"""Benchmark: starting goheap with its compiled runtime cached, and the commands that need none.

Each command runs ``--rounds`` times in a fresh interpreter (after one run that fills the
cache), measured from outside: CPU time (user + system) and peak RSS; it prints the
medians. The goals: ``import goheap; goheap.Heap().alloc(8)`` in at most 0.3 s of CPU
and 80 MB of RSS after the first Heap(); ``goheap --help`` and the other commands that
need no compiled runtime as cheap as the interpreter with click.

For scale it also measures numba's own floor: a process that loads one cached ``@njit``
function of one line (``x + 1``) from numba's cache and calls it. Any program that runs
code numba compiled pays that much before doing anything; goheap's warm start is shown
against it.

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
import shutil
import statistics
import subprocess
import sys
import tempfile
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


FLOOR_MODULE = textwrap.dedent(
    """
    from numba import njit

    @njit(cache=True)
    def plus_one(x):
        return x + 1
    """
)


def numba_floor(workdir: str) -> tuple[list[str], dict[str, str]]:
    """The command (and its environment) that loads one cached one-line numba function and calls it."""
    with open(os.path.join(workdir, "floor_module.py"), "w") as f:
        f.write(FLOOR_MODULE)
    env = {**ENV, "NUMBA_CACHE_DIR": os.path.join(workdir, "cache")}
    return [sys.executable, "-c", f"import sys; sys.path.insert(0, {workdir!r}); import floor_module; floor_module.plus_one(1)"], env


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(CPU seconds, peak RSS in MB) of one run."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env or ENV)
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    opts = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="goheap-bench-startup-")
    floor_cmd, floor_env = numba_floor(workdir)
    commands = {name: (cmd, ENV) for name, cmd in COMMANDS.items()}
    commands["numba floor (one cached function)"] = (floor_cmd, floor_env)
    for cmd, env in commands.values():
        measure(cmd, env)  # fill the caches (and the bytecode files)
    print(f"{'command':<34} {'CPU s':>6} {'peak MB':>8}")
    medians = {}
    for name, (cmd, env) in commands.items():
        runs = [measure(cmd, env) for _ in range(opts.rounds)]
        medians[name] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
        print(f"{name:<34} {medians[name][0]:6.2f} {medians[name][1]:8.1f}")
    heap_cpu, heap_mb = medians["import goheap; Heap().alloc(8)"]
    floor_cpu, floor_mb = medians["numba floor (one cached function)"]
    print(f"\nwarm start / numba floor: CPU {heap_cpu / floor_cpu:.2f}x, peak RSS {heap_mb / floor_mb:.2f}x "
          f"(goals: {0.3 / floor_cpu:.2f}x and {80 / floor_mb:.2f}x of this floor)")
    shutil.rmtree(workdir, ignore_errors=True)
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
