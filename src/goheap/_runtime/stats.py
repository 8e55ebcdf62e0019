"""Memory statistics: MStats (malloc.h) and runtime.MemStats (mem.go).

See :mod:`goheap._runtime.malloc` for the overview. The counters live in the ``st``,
``by_size`` and ``pause_ns`` arrays and are updated where the seed updates them, many of
them lagging behind in each thread's cache until a purge (see ``mheap.purgecachedstats``).
:class:`MemStats` is the snapshot ``Heap.read_mem_stats()`` returns after folding every
cache in, as the seed's ReadMemStats does with the world stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from . import layout as L

__all__ = ["GCStats", "MemStats", "SizeClassStats", "pause_quantiles"]


@dataclass(frozen=True)
class SizeClassStats:
    """One entry of MemStats.BySize."""

    size: int
    mallocs: int
    frees: int


# snake_case field -> (Go name, st slot)
_SCALARS = (
    ("alloc", "Alloc", L.ST_ALLOC),
    ("total_alloc", "TotalAlloc", L.ST_TOTAL_ALLOC),
    ("sys", "Sys", L.ST_SYS),
    ("lookups", "Lookups", L.ST_NLOOKUP),
    ("mallocs", "Mallocs", L.ST_NMALLOC),
    ("frees", "Frees", L.ST_NFREE),
    ("heap_alloc", "HeapAlloc", L.ST_HEAP_ALLOC),
    ("heap_sys", "HeapSys", L.ST_HEAP_SYS),
    ("heap_idle", "HeapIdle", L.ST_HEAP_IDLE),
    ("heap_inuse", "HeapInuse", L.ST_HEAP_INUSE),
    ("heap_released", "HeapReleased", L.ST_HEAP_RELEASED),
    ("heap_objects", "HeapObjects", L.ST_HEAP_OBJECTS),
    ("stack_inuse", "StackInuse", L.ST_STACKS_INUSE),
    ("stack_sys", "StackSys", L.ST_STACKS_SYS),
    ("mspan_inuse", "MSpanInuse", L.ST_MSPAN_INUSE),
    ("mspan_sys", "MSpanSys", L.ST_MSPAN_SYS),
    ("mcache_inuse", "MCacheInuse", L.ST_MCACHE_INUSE),
    ("mcache_sys", "MCacheSys", L.ST_MCACHE_SYS),
    ("buck_hash_sys", "BuckHashSys", L.ST_BUCKHASH_SYS),
    ("next_gc", "NextGC", L.ST_NEXT_GC),
    ("last_gc", "LastGC", L.ST_LAST_GC),
    ("pause_total_ns", "PauseTotalNs", L.ST_PAUSE_TOTAL_NS),
    ("num_gc", "NumGC", L.ST_NUMGC),
)


@dataclass(frozen=True)
class MemStats:
    """runtime.MemStats, with snake_case fields; :meth:`to_go` gives Go's names."""

    alloc: int
    total_alloc: int
    sys: int
    lookups: int
    mallocs: int
    frees: int
    heap_alloc: int
    heap_sys: int
    heap_idle: int
    heap_inuse: int
    heap_released: int
    heap_objects: int
    stack_inuse: int
    stack_sys: int
    mspan_inuse: int
    mspan_sys: int
    mcache_inuse: int
    mcache_sys: int
    buck_hash_sys: int
    next_gc: int
    last_gc: int
    pause_total_ns: int
    num_gc: int
    enable_gc: bool
    debug_gc: bool
    pause_ns: tuple[int, ...] = field(repr=False)  # the 256-entry ring, as in Go
    by_size: tuple[SizeClassStats, ...] = field(repr=False)

    @classmethod
    def from_arrays(cls, st, pause_ns, by_size) -> MemStats:
        kw = {name: int(st[slot]) for name, _, slot in _SCALARS}
        return cls(
            **kw,
            enable_gc=bool(st[L.ST_ENABLEGC]),
            debug_gc=bool(st[L.ST_DEBUGGC]),
            pause_ns=tuple(int(x) for x in pause_ns),
            by_size=tuple(SizeClassStats(int(r[0]), int(r[1]), int(r[2])) for r in by_size),
        )

    def to_go(self) -> dict[str, object]:
        """Go's field names and values, in mem.go's order (PauseNs the full ring, BySize a list of dicts)."""
        out: dict[str, object] = {go: getattr(self, name) for name, go, _ in _SCALARS}
        out["EnableGC"] = self.enable_gc
        out["DebugGC"] = self.debug_gc
        out["PauseNs"] = list(self.pause_ns)
        out["BySize"] = [{"Size": b.size, "Mallocs": b.mallocs, "Frees": b.frees} for b in self.by_size]
        return out

    def go_lines(self) -> list[str]:
        """The ``Key=Value`` lines the seed-run programs print after ``# MemStats``."""
        lines = [f"{go}={getattr(self, name)}" for name, go, _ in _SCALARS[:-1]]
        lines.append(f"NumGC={self.num_gc}")
        lines.append(f"EnableGC={'true' if self.enable_gc else 'false'}")
        lines.append(f"DebugGC={'true' if self.debug_gc else 'false'}")
        n = self.num_gc
        ring = len(self.pause_ns)
        for g in range(max(0, n - ring), n):
            lines.append(f"PauseNs[gc{g + 1}]={self.pause_ns[g % ring]}")
        for i, b in enumerate(self.by_size):
            lines.append(f"BySize[{i}].Size={b.size}")
            lines.append(f"BySize[{i}].Mallocs={b.mallocs}")
            lines.append(f"BySize[{i}].Frees={b.frees}")
        return lines

    @staticmethod
    def field_names() -> list[str]:
        return [f.name for f in fields(MemStats)]


@dataclass(frozen=True)
class GCStats:
    """runtime/debug.GCStats: the last GC time, the count, total pause, pauses most recent first.

    ``pause_quantiles`` holds as many quantiles (minimum to maximum) as were asked of
    ``Heap.read_gc_stats``, computed as debug.ReadGCStats computes them.
    """

    last_gc: int
    num_gc: int
    pause_total_ns: int
    pause: tuple[int, ...]
    pause_quantiles: tuple[int, ...] = ()

    @classmethod
    def from_ring(cls, last_gc: int, num_gc: int, pause_total_ns: int, ring, nquantiles: int = 0) -> GCStats:
        """readGCStats: the min(NumGC, 256) most recent pauses of the ring (GC k in slot k % 256)."""
        n = min(num_gc, len(ring))
        pause = tuple(int(ring[(num_gc - 1 - i) % len(ring)]) for i in range(n))
        return cls(last_gc, num_gc, pause_total_ns, pause, pause_quantiles(pause, nquantiles))


def pause_quantiles(pause: tuple[int, ...], nquantiles: int) -> tuple[int, ...]:
    """debug.ReadGCStats' quantiles: q[i] = sorted[len*i/(n-1)] for i < n-1, the last the maximum.

    All zero when there are no pauses yet.
    """
    if nquantiles <= 0:
        return ()
    if not pause:
        return (0,) * nquantiles
    s = sorted(pause)
    nq = nquantiles - 1
    return tuple(s[len(s) * i // nq] for i in range(nq)) + (s[-1],)
