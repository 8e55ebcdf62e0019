"""The clock and the scavenger: Heap.now/advance_clock, the scavenger's rounds, FreeOSMemory.

See :mod:`goheap._runtime.mheap` (mheap_scavenge) for what a round releases.
"""

from __future__ import annotations

import sys

from .. import errors
from .._runtime import entry
from .._runtime import layout as L
from .._runtime.gctrace import format_scvg

INT64_MAX = (1 << 63) - 1


class HeapScavenger:
    """Heap's clock and scavenger methods (a mixin over the attributes Heap.__init__ sets)."""

    def free_os_memory(self) -> int:
        """debug.FreeOSMemory: collect, then release every free span to the OS; the bytes newly released."""
        self._check_open()
        entry.gc(self._handle, self._cache(), True)
        released = int(entry.scavenge(self._handle, INT64_MAX, 0))
        self._after()
        return released

    # ------------------------------------------------------------ time and the scavenger

    def now(self) -> int:
        self._check_open()
        return int(entry.nanotime(self._handle))

    def advance_clock(self, ns: int) -> None:
        """Move the virtual clock forward, running every scavenger round that falls due."""
        if not self.config.virtual_clock:
            raise errors.HeapError("advance_clock needs a heap built with virtual_clock=True")
        self._check_open()
        if ns < 0:
            raise errors.HeapError(f"the clock cannot go back ({ns} ns)")
        h = self._arrays.h
        target = int(h[L.H_NOW]) + int(ns)
        while self._next_scavenge <= target:
            h[L.H_NOW] = self._next_scavenge
            self.scavenger_tick()
            self._next_scavenge += self._scvg_tick_ns
        h[L.H_NOW] = target

    def scavenger_tick(self) -> int:
        """One round of the scavenger goroutine; the bytes it released.

        Forces a collection if none ran for force_gc_period_ns, then returns the free spans
        idle for more than scavenge_limit_ns to the OS (madvise DONTNEED). With gctrace on,
        prints the seed's ``scvg<k>:`` lines.
        """
        self._check_open()
        k = self._scvg_k
        self._scvg_k += 1
        now = self.now()
        st = self._arrays.mstats
        trace = self._arrays.h[L.H_GCTRACE] > 0
        stream = self.trace_stream or sys.stderr
        if now - int(st[L.ST_LAST_GC]) > self.config.force_gc_period_ns:
            entry.gc(self._handle, self._cache(), True)
            self._print_traces()
            if trace:
                stream.write(f"scvg{k}: GC forced\n")
            now = self.now()
        released = int(entry.scavenge(self._handle, now, self.config.scavenge_limit_ns))
        if trace:
            stream.write("".join(format_scvg(k, released, st)))
        self._after()
        return released

    def _scavenger_loop(self) -> None:
        """The scavenger goroutine on a real-time thread (HeapConfig.scavenger_thread)."""
        while not self._scvg_stop.wait(self._scvg_tick_ns / 1e9):
            with self._lock:
                if self._closed:
                    return
                self.scavenger_tick()
