"""Benchmark: the cost of a small allocation, compiled and from Python, and against Go.

Measures, in one run:

* ``compiled``: a 16-byte mallocgc + free in a loop inside one ``@numba.njit`` function,
  through :mod:`goheap.nb` (goal: <= 30 ns per alloc+free);
* ``python``: ``h.alloc(16)`` + ``h.free(p)`` from a Python loop (goal: <= 1 us per pair),
  and, as the floor any Python API over numba pays, a trivial njit call taking three ints;
* ``go``: when ``go`` is on PATH, a tiny Go program built now in a temporary directory,
  allocating a 16-byte object with pointers in the same kind of loop (Go cannot free: its
  collector's share of the cost is included), and the ratio goheap/Go.

The heaps use the seed's defaults (GOGC=100, MemProfileRate=512 KB), as the Go program does.
Times are CPU time of the process (so that other processes competing for the cores count
less; Go's includes its collector's threads), each figure the best of ``--repeat`` runs.
This is not a test: nothing is asserted.

Usage::

    .venv/bin/python bench/bench_malloc.py [--n N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numba

import goheap
from goheap import nb

GO_PROGRAM = """\
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

type node struct{ left, right *node } // 16 bytes, with pointers

var sink *node

func loop(n int) {
	for i := 0; i < n; i++ {
		sink = new(node)
	}
}

func cpuNanos() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	repeat, _ := strconv.Atoi(os.Args[2])
	loop(n) // warm up: the heap grows to its steady size
	best := int64(1 << 62)
	for r := 0; r < repeat; r++ {
		start := cpuNanos()
		loop(n)
		if d := cpuNanos() - start; d < best {
			best = d
		}
	}
	fmt.Println(float64(best) / float64(n))
}
"""


@numba.njit(cache=True)
def _alloc_free_loop(rt, c, n):
    s = 0
    for _ in range(n):
        p = nb.alloc(rt, c, 16)
        s += p & 15
        nb.free(rt, c, p)
    return s


@numba.njit(cache=True)
def _trivial(a, b, c):
    return a + b + c


def best_of(repeat: int, fn) -> float:
    """The least CPU time of ``repeat`` calls of fn, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def bench_compiled(n: int, repeat: int) -> float:
    """ns per 16-byte alloc+free inside one compiled loop."""
    with goheap.Heap(arena_size=1 << 30) as h:
        rt, c = h.runtime, h.cache()
        _alloc_free_loop(rt, c, 1000)
        return best_of(repeat, lambda: _alloc_free_loop(rt, c, n)) / n * 1e9


def bench_python(n: int, repeat: int) -> tuple[float, float]:
    """(us per h.alloc(16) + h.free, us per trivial njit call) from a Python loop."""
    with goheap.Heap(arena_size=1 << 30) as h:
        alloc, free = h.alloc, h.free

        def pairs():
            for _ in range(n):
                free(alloc(16))

        pairs()
        api = best_of(repeat, pairs) / n * 1e6
    _trivial(1, 2, 3)

    def calls():
        for _ in range(n):
            _trivial(1, 2, 3)

    trivial = best_of(repeat, calls) / n * 1e6
    return api, trivial


def bench_go(n: int, repeat: int) -> float | None:
    """ns per 16-byte new() in Go, or None when go is not installed."""
    go = shutil.which("go")
    if go is None:
        return None
    with tempfile.TemporaryDirectory(prefix="goheap-bench-") as tmp:
        src = Path(tmp) / "main.go"
        src.write_text(GO_PROGRAM)
        exe = Path(tmp) / "alloc"
        env = {**os.environ, "GO111MODULE": "off", "GOFLAGS": ""}
        subprocess.run([go, "build", "-o", str(exe), str(src)], check=True, cwd=tmp, env=env)
        out = subprocess.run([str(exe), str(n), str(repeat)], check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5_000_000, help="allocations per compiled or Go run")
    ap.add_argument("--python-n", type=int, default=300_000, help="allocations per Python run")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    compiled = bench_compiled(args.n, args.repeat)
    api, trivial = bench_python(args.python_n, args.repeat)
    go = bench_go(args.n, args.repeat)

    print(f"compiled  16 B mallocgc+free in @njit (goheap.nb): {compiled:7.1f} ns/op   (goal <= 30 ns)")
    print(f"python    h.alloc(16) + h.free(p):                  {api:7.3f} us/op   (goal <= 1 us)")
    print(f"python    trivial njit call, 3 ints (reference):    {trivial:7.3f} us/call")
    print(f"          ratio alloc+free / trivial call:          {api / trivial:7.2f}")
    if go is None:
        print("go        not on PATH: skipped")
    else:
        print(f"go        16 B new() in a loop (GC included):       {go:7.1f} ns/op")
        print(f"          ratio goheap compiled / Go:               {compiled / go:7.2f}")


if __name__ == "__main__":
    main()
