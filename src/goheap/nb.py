"""The compiled API: allocate, free, load and store from your own ``@numba.njit`` code.

Compiled mutators receive the heap's runtime (``heap.runtime``) and a cache row
(``heap.cache()``) and call these functions; whole programs then run without leaving
compiled code, collections included. The errors they can see come back as negative
return values (the ``E_*`` codes of ``goheap._runtime.layout``: out of memory, a bad size,
an invalid or double free); nothing is changed when one is returned.

Checked and unchecked. Called from compiled code these functions check nothing else, for
speed (a load or store is one instruction): an address outside the heap or in a freed
block, a cache row or stack slot out of range, a type id never registered, or a runtime
whose heap was closed is undefined behaviour there, as in C: a crash, or a heap corrupted
silently. ``goheap.nb.checked`` has the same functions, with the same arguments and
results, that validate everything first and raise the goheap error for what the fast ones
cannot see (``AddressError`` naming the address, ``HeapClosed``, ``InvalidValue``); compile
a mutator against it to debug it. Called from plain Python (not from compiled code),
``goheap.nb``'s functions always run their checked twins, after checking that every
argument but the runtime is an int of 64 bits, so a mistake at the prompt is an exception,
never a crash. (Interpreted, with NUMBA_DISABLE_JIT=1, nothing is checked: numpy
bounds-checks the arrays instead.)

    import numba, goheap
    from goheap import nb

    @numba.njit
    def build_list(rt, c, n):
        head = 0
        for i in range(n):
            node = nb.alloc(rt, c, 16)          # may collect: keep live data rooted
            nb.store(rt, node, head)            # node.next = head
            nb.set_root(rt, c, 0, node)         # shadow-stack slot 0 holds the list
            head = node
        return head

Race mode: with a heap built with ``race=True``, ``heap.runtime`` is a ``RaceRuntime`` and
a mutator compiled for it checks every ``load``/``store``/``load_byte``/``store_byte`` for
data races with other threads (:mod:`goheap.race`), as 6g's -race code does; compiled
for an ordinary heap's runtime it checks nothing. ``race_func_enter(rt, fn)`` and
``race_func_exit(rt)`` (racefuncenter/racefuncexit) name the compiled frames that race
reports show, ``fn`` being an id from ``heap.race.function("main.worker", file, line)``.

Roots: each thread has one stack of words, scanned conservatively from its bottom to its
top at every collection, as the seed scans a goroutine stack. Use it either as a shadow
stack of roots (``push_root``/``pop_root``, or slots set with ``set_root`` and read with
``get_root``; popped slots are cleared), or as an emulated call stack (``stack_reserve`` a
frame, ``stack_store`` its slots, ``stack_release`` it on return; nothing is cleared, so
dead slots of earlier frames stay visible to the collector until overwritten, exactly like
Go's stacks of 2013). For emulating the runtime's own C frames on such a stack
(``goheap.workloads.gostack``), ``alloc_path`` tells which of mallocgc's slower paths the
thread's allocations took since ``alloc_path_reset`` (the ``PATH_*`` bits), ``num_gc``
counts the collections, and ``settype_flush_arrays`` gives the span type arrays the last
settype flush left in its frames. Collections that run inside compiled code queue the finalizers they
find due; call ``heap.after_compiled()`` when the mutator returns to run them (and to
print gctrace lines).
"""

from __future__ import annotations

from . import _jit_checked as checked
from ._jit_api import (
    FLAG_NO_GC,
    FLAG_NO_POINTERS,
    FLAG_NO_PROFILING,
    PATH_GROW,
    PATH_LARGE,
    PATH_MEMCLR,
    PATH_PROFILE,
    PATH_REFILL,
    PATH_SETTYPE_FLUSH,
    alloc,
    alloc_path,
    alloc_path_reset,
    alloc_noscan,
    alloc_typed,
    free,
    gc,
    get_root,
    load,
    lookup,
    num_gc,
    pop_root,
    push_root,
    race_func_enter,
    race_func_exit,
    set_root,
    shadow_depth,
    stack_load,
    stack_release,
    stack_reserve,
    stack_store,
    store,
    store_byte,
    load_byte,
    set_shadow_depth,
    set_profile_bucket,
    settype_flush_arrays,
)

# the flags, the checked twin, and every function (goheap.nb.checked has the same names)
__all__ = sorted([
    "FLAG_NO_GC", "FLAG_NO_POINTERS", "FLAG_NO_PROFILING", "PATH_GROW", "PATH_LARGE", "PATH_MEMCLR",
    "PATH_PROFILE", "PATH_REFILL", "PATH_SETTYPE_FLUSH", "checked", *checked.__all__,
])

checked.check_python_calls(globals())
