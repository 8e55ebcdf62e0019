"""Rooted references for Python code: handle scopes (:class:`Scope`) and :class:`Ref`.

The collector sees none of the ints Python holds. Between ``p = heap.alloc(n)`` and
rooting p, any collection (another thread's, or one this thread's next allocation
triggers) may free p. VMs solve this with handles the collector knows about; these are
goheap's, after V8's HandleScope and Global (JNI's local frames and global references):

    with heap.scope() as s:            # a scope: its blocks are roots until it exits
        a = s.alloc(16)                # allocated and rooted in one step
        b = s.alloc(16)
        heap.store_ptr(a, 0, b)
        keep = heap.ref(a)             # a Ref: a root for as long as the object lives
    ...                                # b lives on through a, a through keep
    keep.release()                     # (or let it be collected)

A scope's roots are slots of the calling thread's shadow stack (the stack goheap.nb's
mutators use, scanned conservatively at every collection); a scope belongs to the thread
that entered it, and scopes nest like calls. A Ref holds a handle of ``heap.roots``.
"""

from __future__ import annotations

import threading

from .. import errors
from .._runtime import entry
from .._runtime import layout as L
from . import args

__all__ = ["Ref", "Scope"]


class Scope:
    """A handle scope: every block allocated or added through it is a root until it exits.

    Enter it with ``with heap.scope() as s``; only the entering thread may use it.
    """

    __module__ = "goheap"
    __slots__ = ("_depth", "_heap", "_row", "_thread")

    def __init__(self, heap):
        self._heap = heap
        self._depth = -1  # the thread's stack depth when the scope was entered; -1: not entered
        self._row = -1
        self._thread = 0

    def __enter__(self) -> Scope:
        h = self._heap
        h._check_open()
        if self._depth >= 0:
            raise errors.HeapError("this scope is already entered")
        self._row = h._cache()
        self._depth = int(h._arrays.cache_local[self._row, L.LC_SHADOW_SP])
        self._thread = threading.get_ident()
        return self

    def __exit__(self, *exc) -> None:
        """Drop the scope's roots (its blocks may be collected from now on, unless reachable)."""
        h = self._heap
        depth, self._depth = self._depth, -1
        if depth < 0 or h._closed:
            return
        a = h._arrays
        sp = int(a.cache_local[self._row, L.LC_SHADOW_SP])
        if sp > depth:
            a.cache_local[self._row, L.LC_SHADOW_SP] = depth  # first: no collection scans them from here on
            a.shadow[self._row, depth:sp] = 0

    def _cache_row(self) -> int:
        if self._depth < 0:
            raise errors.HeapError("use a scope inside its with block (with heap.scope() as s: ...)")
        if threading.get_ident() != self._thread:
            raise errors.HeapError("a scope belongs to the thread that entered it")
        return self._row

    def alloc(self, size: int, **options) -> int:
        """:meth:`goheap.Heap.alloc`, the block rooted in this scope (in the same step: no collection between)."""
        return self._heap._alloc_rooted(self._cache_row(), size, **options)

    def alloc_array(self, type, n: int) -> int:
        """:meth:`goheap.Heap.alloc_array`, the block rooted in this scope."""
        n = args.integer(n, "array length", 0, error=errors.InvalidSize)
        return self.alloc(self._heap._type_size(type) * n, type=type)

    def add(self, p: int) -> int:
        """Root the block holding p until the scope exits; returns p."""
        p = args.address(p, "root")
        c = self._cache_row()
        h = self._heap
        h._check_open()
        if int(entry.push_root(h._handle, c, p)) < 0:
            raise errors.OutOfMemory(f"the thread's shadow stack is full ({h.config.limits.shadow_depth} slots, Limits.shadow_depth)")
        return p

    def __repr__(self) -> str:
        return f"<goheap.Scope {'entered' if self._depth >= 0 else 'not entered'}>"


class Ref:
    """A root for one block, for as long as this object lives (or until :meth:`release`).

    Made by ``heap.ref(p)``; ``addr`` is p. Also a context manager that releases on exit.
    """

    __module__ = "goheap"
    __slots__ = ("__weakref__", "_handle", "_heap", "addr")

    def __init__(self, heap, handle: int, addr: int):
        self._heap = heap
        self._handle = handle
        self.addr = addr

    @property
    def released(self) -> bool:
        return self._handle < 0

    def release(self) -> None:
        """Drop the root now (again: nothing)."""
        k, self._handle = self._handle, -1
        if k >= 0:
            self._heap.roots._release_ref(k)

    def __enter__(self) -> Ref:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self):
        k, self._handle = self._handle, -1
        if k >= 0:
            self._heap.roots._drop_ref(k)

    def __repr__(self) -> str:
        state = "released" if self._handle < 0 else f"handle {self._handle}"
        return f"<goheap.Ref {self.addr:#x} ({state})>"
