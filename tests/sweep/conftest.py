"""Shared fixtures of the sweep tests: small trace files, and one Dask cluster per module that asks for it."""

from __future__ import annotations

import numpy as np
import pytest

from goheap.trace import KIND_ALLOC, KIND_FREE, KIND_GC, Trace

A = 0xC000010000  # a Go-like heap address


def program_trace(n: int = 6000, seed: int = 1, big: int = 0) -> Trace:
    """A small program: n allocations of 8 B to 2 KiB, most dying young, a GC point every 1000.

    big: the size of one more allocation at the start (larger than any arena: a replay of
    the trace fails at once).
    """
    rng = np.random.default_rng(seed)
    kind, addr, size = [], [], []
    live: list[int] = []
    sizes = {}

    def event(k: int, a: int, s: int) -> None:
        kind.append(k)
        addr.append(a)
        size.append(s)

    if big:
        event(KIND_ALLOC, A - (1 << 20), big)
    for i in range(n):
        a = A + i * 4096
        s = int(rng.choice([8, 16, 24, 48, 96, 256, 1024, 2048], p=[0.2, 0.25, 0.15, 0.15, 0.1, 0.08, 0.05, 0.02]))
        event(KIND_ALLOC, a, s)
        sizes[a] = s
        live.append(a)
        if len(live) > 200 and rng.random() < 0.9:
            victim = live.pop(int(rng.integers(0, len(live) - 100)))
            event(KIND_FREE, victim, sizes[victim])
        if i % 1000 == 999:
            event(KIND_GC, 0, 0)
    return Trace(
        kind=kind, addr=addr, size=size,
        type_id=[0 if k == KIND_ALLOC and s % 16 == 0 else -1 for k, s in zip(kind, size)],
        func_id=[-1] * len(kind), types=("*main.Node",), meta={"source": f"program-{seed}.log"},
    )  # fmt: skip


@pytest.fixture(scope="session")
def traces(tmp_path_factory):
    """Trace files: ``good`` (a small program), ``other`` (another seed), ``bad`` (its replay fails)."""
    d = tmp_path_factory.mktemp("traces")
    out = {}
    for name, trace in (("good", program_trace()), ("other", program_trace(seed=2)), ("bad", program_trace(2000, big=1 << 50))):
        path = d / f"{name}.trace.npz"
        trace.save(path)
        out[name] = path
    return out
