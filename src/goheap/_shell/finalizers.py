"""Finalizers from Python: runtime.SetFinalizer, and runfinq, which runs the queue.

See :mod:`goheap._runtime.gc.finalizers` for the table and the queue (mfinal.c).
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Callable

from .. import errors
from .._runtime import entry
from .._runtime import layout as L
from .._runtime.constants import BIT_ALLOCATED
from . import args
from .state import HeapState


class HeapFinalizers(HeapState):
    """Heap's finalizer methods (a mixin over the attributes Heap.__init__ sets: see HeapState)."""

    def set_finalizer(self, p: int, fn: Callable[[int], object] | None) -> None:
        """runtime.SetFinalizer: call fn(p) once the block at p is found unreachable; None removes it.

        p must be the start of an allocated block the collector manages (not nogc). fn runs
        after the collection that found p unreachable, outside it (allocating and collecting
        are allowed; closing the heap is not); p survives that collection and is freed by a
        later one unless fn made it reachable again. A finalizer runs once: set it again to
        re-arm it. Raises FinalizerError if p already has one; an exception raised by fn is
        reported as a FinalizerWarning once its batch has run.
        """
        p = args.address(p)
        if fn is not None and not callable(fn):
            raise errors.FinalizerError(f"set_finalizer: {fn!r} is not callable")
        with self._lock:
            self._check_open()
            if int(entry.check_free(self._handle, p)) != 0 or not int(entry.block_bits(self._handle, p)) & BIT_ALLOCATED:
                raise errors.AddressError(f"set_finalizer: {p:#x} is not the start of an allocated, collected block")
            if fn is None:
                entry.remove_finalizer(self._handle, p)
                self._finalizers.pop(p, None)
                return
            code = int(entry.add_finalizer(self._handle, self._cache(), p))
            if code == 0:
                raise errors.FinalizerError(f"set_finalizer: the block at {p:#x} already has a finalizer")
            if code < 0:
                limit = self.config.limits.finalizers
                if int(self._arrays.gcstats[L.GS_NFIN]) >= limit:
                    raise errors.OutOfMemory(
                        f"set_finalizer({p:#x}): {limit} blocks have finalizers already, the limit (Limits.finalizers)"
                    )
                raise errors.OutOfMemory(f"set_finalizer({p:#x}): out of memory for the finalizer table")
            self._finalizers[p] = fn

    def _run_finalizers(self) -> None:
        """runfinq: run the queued finalizers, newest FinBlock first; after each batch force a collection.

        The queue is taken whole before any finalizer runs, so one that allocates or collects
        starts a new batch. Exceptions are collected and reported as FinalizerWarnings once
        the batch and its collection are done; an exception that is not an Exception (a
        KeyboardInterrupt) puts the batch's unrun finalizers back in the queue and propagates.
        Once another thread closes the heap, no further finalizer runs.
        """
        failures: list[tuple[int, Callable[[int], object], Exception]] = []
        if not self._finq_lock.acquire(blocking=False):
            return
        try:
            while not self._closed and self._arrays.gcstats[L.GS_NFINQ]:
                with self._lock:
                    queue = [int(x) for x in entry.take_finalizer_queue(self._handle)]
                n = len(queue)
                cap = L.FINBLOCK_CAP
                batch = [p for k in range((n - 1) // cap * cap, -1, -cap) for p in queue[k : k + cap]]
                for i, p in enumerate(batch):
                    fn = self._finalizers.pop(p, None)
                    if fn is None:
                        continue
                    try:
                        fn(p)
                    except Exception as exc:  # noqa: BLE001 - reported after the batch
                        failures.append((p, fn, exc))
                    except BaseException:
                        self._requeue(batch[i + 1 :])
                        raise
                    if self._closed:  # by another thread, which waits for this call to end
                        break
                else:
                    entry.gc(self._handle, self._cache(), True)
                    if self._arrays.gcstats[L.GS_NTRACE] != self._traced:
                        self._print_traces()
        finally:
            self._finq_lock.release()
        for p, fn, failure in failures:
            tb = "".join(traceback.format_exception(failure))
            warnings.warn(errors.FinalizerWarning(f"finalizer {fn!r} of the block at {p:#x} raised:\n{tb}"), stacklevel=3)

    def _requeue(self, ps: list[int]) -> None:
        with self._lock:
            if self._closed:
                return
            for p in ps:
                if p in self._finalizers and not entry.queue_finalizer(self._handle, p):
                    break  # the queue is full: the rest wait for the next collection to find them

    def _unqueue(self, p: int) -> None:
        """Drop p from the queue of ready finalizers, if it waits there."""
        with self._lock:
            entry.unqueue_finalizer(self._handle, p)
