"""Shared helpers of goheap's tests: small heaps, read-only views of runtime state, the
compiled runtime functions callable from Python, and hypothesis strategies.

Tests import it as ``heaptools`` (``pythonpath = ["tests"]`` in pyproject). Views read
``heap._arrays`` directly and never change anything; wrappers around internal runtime
functions take the heap's integer handle, as the shell's entry points do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

import goheap
from goheap._runtime import layout as L
from goheap._runtime._jit import jit
from goheap._runtime.constants import MAX_MHEAP_LIST, NUM_SIZE_CLASSES, PAGE_SHIFT, PAGE_SIZE
from goheap._runtime.handle import runtime_at
from goheap._runtime.mcentral import mcentral_alloc_list, mcentral_free_list
from goheap._runtime.mheap import mheap_alloc, mheap_free, mheap_grow, mheap_lookup, mheap_lookup_maybe, mheap_scavenge
from goheap.trace import KIND_ALLOC, KIND_FREE, KIND_GC, Trace

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SEED_RUNS = SHARED_DATA / "go-seed-runs" / "runs"


def small_heap(**config) -> goheap.Heap:
    """A 64 MB heap, collector off (GOGC=off) and profiler off unless asked for."""
    config.setdefault("arena_size", 64 << 20)
    config.setdefault("gcpercent", -1)
    config.setdefault("memprofilerate", 0)
    return goheap.Heap(**config)


# ---------------------------------------------------------------- reading state


@dataclass(frozen=True)
class Span:
    """One MSpan row, decoded."""

    id: int
    start: int  # address
    npages: int
    state: int
    sizeclass: int
    elemsize: int
    ref: int
    freelist: int
    limit: int
    npreleased: int
    unusedsince: int
    types_compression: int
    types_data: int

    @property
    def end(self) -> int:
        return self.start + self.npages * PAGE_SIZE


class View:
    """Read-only accessors over a heap's runtime arrays, named as in the seed."""

    def __init__(self, heap: goheap.Heap):
        self.heap = heap
        self.a = heap._arrays

    # --- words and bits
    def word(self, addr: int) -> int:
        return int(self.a.mem[(addr - int(self.a.h[L.H_BASE])) >> 3])

    def bits(self, addr: int) -> int:
        """The 4 bitmap bits of addr's word, at plane position 0 (BIT_* values)."""
        start = int(self.a.h[L.H_ARENA_START])
        off = (addr - start) >> 3
        w = int(self.a.mem[((start - int(self.a.h[L.H_BASE])) >> 3) - (off >> 4) - 1]) & ((1 << 64) - 1)
        return (w >> (off & 15)) & 0x0001_0001_0001_0001

    # --- spans and lists
    def span(self, s: int) -> Span:
        r = [int(x) for x in self.a.spans[s]]
        return Span(
            s, r[L.SP_START] << PAGE_SHIFT, r[L.SP_NPAGES], r[L.SP_STATE], r[L.SP_SIZECLASS], r[L.SP_ELEMSIZE],
            r[L.SP_REF], r[L.SP_FREELIST], r[L.SP_LIMIT], r[L.SP_NPRELEASED], r[L.SP_UNUSEDSINCE],
            r[L.SP_TYPES_COMPRESSION], r[L.SP_TYPES_DATA],
        )

    def span_list(self, head: int) -> list[Span]:
        out, s = [], int(self.a.spans[head, L.SP_NEXT])
        while s != head:
            out.append(self.span(s))
            s = int(self.a.spans[s, L.SP_NEXT])
        return out

    def free_list(self, npages: int) -> list[Span]:
        """mheap.free[npages], head first."""
        return self.span_list(L.FREE_HEAD0 + npages)

    def large_list(self) -> list[Span]:
        return self.span_list(L.LARGE_HEAD)

    def free_spans(self) -> list[Span]:
        out = []
        for n in range(1, MAX_MHEAP_LIST):
            out += self.free_list(n)
        return sorted(out + self.large_list(), key=lambda sp: sp.start)

    def live_spans(self) -> list[Span]:
        """Every span in use or free (not dead), by address."""
        first = L.FIRST_SPAN
        rows = range(first, first + int(self.a.h[L.H_NSPAN]))
        spans = [self.span(s) for s in rows]
        return sorted((sp for sp in spans if sp.state in (0, 1)), key=lambda sp: sp.start)

    def nonempty(self, sizeclass: int) -> list[Span]:
        return self.span_list(L.NONEMPTY_HEAD0 + sizeclass)

    def empty(self, sizeclass: int) -> list[Span]:
        return self.span_list(L.EMPTY_HEAD0 + sizeclass)

    def span_of(self, addr: int) -> Span:
        """The span the map names for addr's page (valid for in-use spans)."""
        return self.span(int(self.a.spanmap[(addr - int(self.a.h[L.H_ARENA_START])) >> PAGE_SHIFT]))

    def map_entry(self, addr: int) -> int:
        return int(self.a.spanmap[(addr - int(self.a.h[L.H_ARENA_START])) >> PAGE_SHIFT])

    def chain(self, first: int, limit: int = 1 << 20) -> list[int]:
        out, p = [], first
        while p and len(out) < limit:
            out.append(p)
            p = self.word(p)
        return out

    # --- caches and central lists
    def cache_list(self, c: int, sizeclass: int) -> list[int]:
        return self.chain(int(self.a.cache_list[c, sizeclass, L.L_LIST]))

    def nlist(self, c: int, sizeclass: int) -> int:
        return int(self.a.cache_list[c, sizeclass, L.L_NLIST])

    def nlistmin(self, c: int, sizeclass: int) -> int:
        return int(self.a.cache_list[c, sizeclass, L.L_NLISTMIN])

    def local(self, c: int, slot: int) -> int:
        return int(self.a.cache_local[c, slot])

    def central_nfree(self, sizeclass: int) -> int:
        return int(self.a.central_nfree[sizeclass])

    # --- stats
    def st(self, slot: int) -> int:
        """An MStats slot as it stands (without folding any cache in)."""
        return int(self.a.mstats[slot])

    def h(self, slot: int) -> int:
        return int(self.a.h[slot])


def objects_per_span(heap: goheap.Heap, sizeclass: int) -> int:
    a = heap._arrays
    return int(a.class_to_allocnpages[sizeclass]) * PAGE_SIZE // int(a.class_to_size[sizeclass])


def class_of(heap: goheap.Heap, size: int) -> int:
    return goheap.init_sizes().size_to_class(size)


def snapshot(heap: goheap.Heap, lookups: bool = True) -> dict[str, np.ndarray]:
    """Copies of every piece of allocator state in use: for "the heap is unchanged" checks.

    The error-detail slot h[H_ERR_ARG] is left out: refusing a call records its argument there.
    lookups=False leaves out the lookup counters (every mlookup counts, failed or not).
    """
    a = heap._arrays
    base, start, used = (int(a.h[x]) for x in (L.H_BASE, L.H_ARENA_START, L.H_ARENA_USED))
    bitmap_lo = start - int(a.h[L.H_BITMAP_MAPPED])
    h = a.h.copy()
    h[L.H_ERR_ARG] = 0
    out = {"h": h, "mem": a.mem[(bitmap_lo - base) >> 3 : (used - base) >> 3].copy()}
    out["spans"] = a.spans[: L.FIRST_SPAN + int(a.h[L.H_NSPAN])].copy()
    out["spanmap"] = a.spanmap[: (used - start) >> PAGE_SHIFT].copy()
    for name in ("mstats", "by_size", "fixalloc", "central_nfree", "cache_list", "cache_local", "cache_by_size", "settype_buf"):
        out[name] = getattr(a, name).copy()
    if not lookups:
        out["mstats"][L.ST_NLOOKUP] = 0
        out["cache_local"][:, L.LC_LOCAL_NLOOKUP] = 0
    return out


def assert_unchanged(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> None:
    for name, arr in before.items():
        assert arr.shape == after[name].shape and np.array_equal(arr, after[name]), f"{name} changed"


# ---------------------------------------------------------------- runtime functions, from Python
#
# The runtime's own functions take a RuntimeRef; these take the heap's integer handle
# (heap._handle) and a cache row, as the shell's entry points do.


@jit
def mheap_alloc_at(handle, c, npage, sizeclass, acct, zeroed):
    """mheap_alloc: the span id, or 0."""
    return mheap_alloc(runtime_at(handle), c, npage, sizeclass, acct, zeroed)


@jit
def mheap_free_at(handle, c, s, acct):
    mheap_free(runtime_at(handle), c, s, acct)


@jit
def mheap_grow_at(handle, npage):
    return mheap_grow(runtime_at(handle), npage)


@jit
def mheap_lookup_at(handle, v):
    return mheap_lookup(runtime_at(handle), v)


@jit
def mheap_lookup_maybe_at(handle, v):
    return mheap_lookup_maybe(runtime_at(handle), v)


@jit
def mheap_scavenge_at(handle, now, limit):
    return mheap_scavenge(runtime_at(handle), now, limit)


@jit
def mcentral_alloc_list_at(handle, c, sizeclass, n):
    """(count, first object) of a batch from the MCentral."""
    return mcentral_alloc_list(runtime_at(handle), c, sizeclass, n)


@jit
def mcentral_free_list_at(handle, c, sizeclass, first):
    mcentral_free_list(runtime_at(handle), c, sizeclass, first)


# ---------------------------------------------------------------- hypothesis strategies


def alloc_sizes(max_size: int = 2 << 20) -> st.SearchStrategy[int]:
    """Request sizes 0..max_size, weighted to small ones as real programs are."""
    return st.one_of(
        st.integers(0, 64),
        st.integers(0, 1024),
        st.integers(0, 32768),
        st.integers(32769, max_size),
    ).filter(lambda n: n <= max_size)


def rss_bytes() -> int:
    """Resident set size of this process (/proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def pattern(addr: int, nbytes: int) -> np.ndarray:
    """The cookie pattern written into a block at allocation: derived from its address."""
    words = max(nbytes // 8, 0)
    return (np.arange(words, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(addr)).view(np.int64)


__all__ = [
    "NUM_SIZE_CLASSES",
    "SEED_RUNS",
    "SHARED_DATA",
    "Span",
    "View",
    "alloc_sizes",
    "assert_unchanged",
    "class_of",
    "mcentral_alloc_list_at",
    "mcentral_free_list_at",
    "mheap_alloc_at",
    "mheap_free_at",
    "mheap_grow_at",
    "mheap_lookup_at",
    "mheap_lookup_maybe_at",
    "mheap_scavenge_at",
    "objects_per_span",
    "pattern",
    "rss_bytes",
    "small_heap",
    "snapshot",
]


def race_heap(**config) -> goheap.Heap:
    """A small race-mode heap: collector off (unless asked for), GORACE ignored, reports kept quiet."""
    from goheap.race import RaceOptions

    config.setdefault("arena_size", 64 << 20)
    config.setdefault("gcpercent", -1)
    config.setdefault("memprofilerate", 0)
    config.setdefault("race", True)
    config.setdefault("race_options", RaceOptions(log_path="stdout"))
    return goheap.Heap(**config)


GO_HEAP_ADDRESS = 0xC000010000  # where a Go program's heap objects are


def program_trace(n: int = 6000, seed: int = 1, big: int = 0, clock: bool = False) -> Trace:
    """A small program: n allocations of 8 B to 2 KiB, most dying young, a GC point every 1000.

    big: the size of one more allocation at the start (larger than any arena: a replay of
    the trace fails at once). clock: the events carry times (1 µs apart), as an execution
    trace's do.
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
        event(KIND_ALLOC, GO_HEAP_ADDRESS - (1 << 20), big)
    for i in range(n):
        a = GO_HEAP_ADDRESS + i * 4096
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
        time_ns=np.arange(len(kind), dtype=np.int64) * 1000 if clock else None,
    )  # fmt: skip
