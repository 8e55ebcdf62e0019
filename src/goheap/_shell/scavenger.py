"""The clock and the scavenger: Heap.now/advance_clock, the scavenger's rounds, FreeOSMemory.

See :mod:`goheap._runtime.mheap` (mheap_scavenge) for what a round releases.
"""

from __future__ import annotations

from .. import errors
from .._runtime import entry
from .._runtime import layout as L
from .._runtime.gctrace import format_scvg
from . import args
from .state import HeapState


class HeapScavenger(HeapState):
    """Heap's clock and scavenger methods (a mixin over the attributes Heap.__init__ sets: see HeapState)."""

    def free_os_memory(self) -> int:
        """debug.FreeOSMemory: collect, then release every free span to the OS; the bytes newly released."""
        self._check_open()
        entry.gc(self._handle, self._cache(), True)
        released = int(entry.scavenge(self._handle, args.INT64_MAX, 0))
        self._after()
        return released

    # ------------------------------------------------------------ time and the scavenger

    def now(self) -> int:
        self._check_open()
        return int(entry.nanotime(self._handle))

    def advance_clock(self, ns: int) -> None:
        """Move the virtual clock forward by ns, running every scavenger round that falls due.

        Rounds that would do nothing are jumped over arithmetically, so a long stretch costs
        little: a round does something only if it forces a collection or releases a span.
        Once a forced collection changed nothing but the collector's own counters (the heap
        is quiet: nothing else runs while the clock advances), every later one would repeat
        it exactly, so those are recorded without being run (see
        :func:`goheap._runtime.gc.collect.gc_repeat`). With gctrace on every round prints,
        and a go_process heap's collections allocate, so there every round runs.
        """
        if not self.config.virtual_clock:
            raise errors.HeapError("advance_clock needs a heap built with virtual_clock=True")
        ns = args.integer(ns, "advance_clock: the time to advance (ns)", 0)
        self._check_open()
        h = self._arrays.h
        st = self._arrays.mstats
        target = int(h[L.H_NOW]) + ns
        if target > args.INT64_MAX:
            raise errors.InvalidValue(f"advance_clock({ns}): the clock would pass 2**63-1 ns")
        quiet = False
        while self._next_scavenge <= target:
            if h[L.H_GCTRACE] <= 0:
                self._jump_idle_rounds(target, quiet)
                if self._next_scavenge > target:
                    break
            h[L.H_NOW] = self._next_scavenge
            before = self._quiet_signature()
            numgc = int(st[L.ST_NUMGC])
            self.scavenger_tick()
            self._next_scavenge += self._scvg_tick_ns
            if int(st[L.ST_NUMGC]) != numgc:
                quiet = int(st[L.ST_NUMGC]) == numgc + 1 and self._quiet_signature() == before
        h[L.H_NOW] = target

    def _quiet_signature(self) -> tuple:
        """What a collection may change besides its own counters (NumGC, LastGC, pauses, HeapReleased)."""
        a = self._arrays
        st = a.mstats.copy()
        st[[L.ST_NUMGC, L.ST_LAST_GC, L.ST_PAUSE_TOTAL_NS, L.ST_HEAP_RELEASED]] = 0
        gs = a.gcstats
        return (
            st.tobytes(),
            a.by_size.tobytes(),
            int(gs[L.GS_NFIN]),
            int(gs[L.GS_NFINQ]),
            int(gs[L.GS_FREED]),
            int(gs[L.GS_MARKED]),
            len(self._finalizers),
        )

    def _jump_idle_rounds(self, target: int, quiet: bool) -> None:
        """Skip the rounds from the next one on that would do nothing but repeat a quiet collection.

        A round releases spans from the first time ``next_release`` gives: it and what follows
        run for real. Under the retained-heap rule (a policy's Go 1.19 scavenger) a round
        releases what a collection left over the goal, so rounds are jumped only once a
        forced collection was quiet and its round released down to the goal. A round at t forces a collection if t - LastGC > force_gc_period_ns:
        when the heap is quiet (and the collection runs on one proc, so that it is
        deterministic) those are recorded by ``repeat_gc``; otherwise the first one runs.
        """
        scavenger = self.policy.scavenger
        if scavenger.retain_extra_percent is not None and not quiet:
            return  # the retained-heap rule releases after a collection: run rounds until one was quiet
        tick = self._scvg_tick_ns
        t0 = self._next_scavenge
        end = target
        if scavenger.release_idle_after_ns is not None:
            end = min(end, int(entry.next_release(self._handle, t0, scavenger.release_idle_after_ns)) - 1)
        if end < t0:
            return
        rounds = (end - t0) // tick + 1
        h = self._arrays.h
        st = self._arrays.mstats
        ngc = first = every = 0
        if st[L.ST_ENABLEGC] != 0 and h[L.H_GCPERCENT] >= 0:
            period = scavenger.force_gc_period_ns
            first = max(0, (int(st[L.ST_LAST_GC]) + period - t0) // tick + 1)  # the first round that forces one
            every = period // tick + 1  # rounds from one forced collection to the next
            if quiet and h[L.H_NPROC] == 1 and h[L.H_GC_STACK_BYTES] == 0:
                ngc = 0 if first >= rounds else (rounds - 1 - first) // every + 1
            else:
                rounds = min(rounds, first)
        if rounds <= 0:
            return
        if ngc:
            entry.repeat_gc(self._handle, ngc, t0 + first * tick, every * tick)
            self._numgc_seen = int(st[L.ST_NUMGC])
            self._traced = int(self._arrays.gcstats[L.GS_NTRACE])
        self._scvg_k += rounds
        self._next_scavenge += rounds * tick

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
        """The scavenger goroutine on a real-time thread (HeapConfig.scavenger_thread).

        close() stops it and waits for the round in progress.
        """
        while not self._scvg_stop.wait(self._scvg_tick_ns / 1e9):
            try:
                self.scavenger_tick()
            except errors.HeapClosed:
                return
