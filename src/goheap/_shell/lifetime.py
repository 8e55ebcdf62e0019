"""When a heap's memory may go: close() against other threads' calls, and what outlives close().

Calls in progress. ``Heap.close()`` first marks the heap closed, so that every call that
starts later raises HeapClosed, then waits until no other thread is inside one of the
heap's calls, and only then unmaps its memory. A thread is inside if its Python stack
holds a frame of the shell's code working on this heap: a method of the Heap, of its
RootSet, of a Scope or Ref of it, of its race detector (the wrappers of the accessors
too), or a function of those modules. The stacks are read with ``sys._current_frames()``:
the calls themselves pay nothing (marking each call's entry and exit would cost every
alloc a lock or a counter), and while close() looks no other thread can be inside
compiled code, which holds the GIL, so each is stopped at a bytecode of a Python frame.
A call that began before close() therefore finishes on intact memory. close() made from
inside one of the heap's own calls on the same thread (by a finalizer, or by a gctrace
stream's write) would pull the memory from under that call: it is refused.

What outlives close(). Numpy views (``Heap.view``) point into the arena, and the compiled
runtime (``Heap.runtime``) into all of the heap's memory. If any of them is still alive
when the heap closes, the memory stays mapped (the arena's pages are given back to the OS
first, so it costs address space, not memory) until the last of them is gone, and only
then is it unmapped. A stale view reads zeros and writes where no heap lives; no access
through it can reach a later heap mapped at the same address.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
import weakref
from types import FrameType

from .. import errors
from ..race import RaceDetector

_SHELL_DIR = os.path.dirname(os.path.abspath(__file__))
SHELL_FILES = frozenset(
    [os.path.join(_SHELL_DIR, name) for name in os.listdir(_SHELL_DIR) if name.endswith(".py")]
    + [os.path.join(os.path.dirname(_SHELL_DIR), "heap.py")]
)
RACE_FILE = RaceDetector.__init__.__code__.co_filename


def _works_on(frame, heap) -> bool:
    """Whether ``frame`` runs the shell's code on ``heap`` (a frame whose heap cannot be told counts)."""
    filename = frame.f_code.co_filename
    if filename not in SHELL_FILES and (filename != RACE_FILE or heap.race is None):
        return False
    owner = frame.f_locals.get("self")
    if owner is None or owner is heap:
        return True
    other = getattr(owner, "_heap", None)
    if isinstance(other, weakref.ref):
        other = other()
    return other is heap


def inside(frame, heap) -> bool:
    """Whether the stack from ``frame`` outwards is inside one of ``heap``'s calls."""
    while frame is not None:
        if _works_on(frame, heap):
            return True
        frame = frame.f_back
    return False


def refuse_reentrant_close(heap, caller) -> None:
    """close() called from ``caller``: refused if that is inside one of the heap's own calls."""
    if caller is not None and inside(caller, heap):
        raise errors.HeapError(
            "close() called from inside one of the same heap's calls (a finalizer or a gctrace stream "
            "may not close its heap): the call would go on using unmapped memory"
        )


def current_frames() -> dict[int, FrameType]:
    """``sys._current_frames()``, with no garbage collection inside it.

    Up to CPython 3.11.8 it holds the interpreter's lock on its list of threads while it
    creates the frame objects, and a collection started by one of those allocations can
    free a ``threading.local`` (a Heap's), whose deallocation takes the same lock: the
    thread waits for itself forever (CPython gh-106883; the fix does the same as this).
    """
    if not gc.isenabled():
        return sys._current_frames()
    gc.disable()
    try:
        return sys._current_frames()
    finally:
        gc.enable()


def wait_for_other_threads(heap) -> None:
    """Return once no thread but this one is inside one of ``heap``'s calls."""
    me = threading.get_ident()
    delay = 1e-5
    while any(ident != me and inside(frame, heap) for ident, frame in current_frames().items()):
        time.sleep(delay)  # lets them run to the end of their call
        delay = min(2 * delay, 1e-2)


class _LastOneOut:
    """Calls ``release`` when the last of n watched objects is collected."""

    def __init__(self, n: int, release):
        self._n = n
        self._release = release
        self._lock = threading.Lock()

    def gone(self) -> None:
        with self._lock:
            self._n -= 1
            last = self._n == 0
        if last:
            self._release()


def release_when_unreachable(sysmem, arena_start: int, arena_used: int, exports) -> bool:
    """Unmap everything ``sysmem`` holds now (True), or once the last live object of ``exports`` is gone.

    exports: weak references to what the heap handed out that may point into its memory.
    While one lives, the arena's used pages are given back to the OS (they read as zeros)
    and the mappings stay, so the address range cannot be handed to another heap.
    """
    alive = [obj for obj in (ref() for ref in exports) if obj is not None]
    if not alive:
        sysmem.release_all()
        return True
    sysmem.sys_unused(arena_start, arena_used - arena_start)
    last = _LastOneOut(len(alive), sysmem.release_all)
    for obj in alive:
        weakref.finalize(obj, last.gone)
    return False
