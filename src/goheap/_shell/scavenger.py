"""The clock and the scavenger: Heap.now/advance_clock, the scavenger's rounds, FreeOSMemory.

See :mod:`goheap._runtime.mheap` (mheap_scavenge) for what a round releases.
"""

from __future__ import annotations

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

        Forces a collection if none ran for the policy's force_gc_period_ns, then returns
        free spans to the OS (madvise DONTNEED): those idle for more than its
        release_idle_after_ns (the seed's rule), and those over its retained-heap goal (Go
        1.19's). With gctrace on, prints the seed's ``scvg<k>:`` lines.
        """
        self._check_open()
        k = self._scvg_k
        self._scvg_k += 1
        now = self.now()
        st = self._arrays.mstats
        trace = self._arrays.h[L.H_GCTRACE] > 0
        scavenger = self.policy.scavenger
        if now - int(st[L.ST_LAST_GC]) > scavenger.force_gc_period_ns:
            entry.gc(self._handle, self._cache(), True)
            self._print_traces()
            if trace:
                self._trace_stream().write(f"scvg{k}: GC forced\n")
            now = self.now()
        released = 0
        if scavenger.release_idle_after_ns is not None:
            released += int(entry.scavenge(self._handle, now, scavenger.release_idle_after_ns))
        if scavenger.retain_extra_percent is not None:
            released += int(entry.scavenge_to_goal(self._handle))
        if trace:
            self._trace_stream().write("".join(format_scvg(k, released, st)))
        self._after()
        return released

    def _scavenger_loop(self) -> None:
        """The scavenger goroutine on a real-time thread (HeapConfig.scavenger_thread)."""
        while not self._scvg_stop.wait(self._scvg_tick_ns / 1e9):
            with self._lock:
                if self._closed:
                    return
                self.scavenger_tick()
