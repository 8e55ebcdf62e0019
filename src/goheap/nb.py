"""The compiled API: allocate, free, load and store from your own ``@numba.njit`` code.

Compiled mutators receive the heap's runtime (``heap.runtime``) and a cache row
(``heap.cache()``) and call these functions; whole programs then run without leaving
compiled code, collections included. Errors come back as negative return values (the
``E_*`` codes of ``goheap._runtime.layout``); nothing is changed when one is returned.

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

__all__ = [
    "FLAG_NO_GC",
    "FLAG_NO_POINTERS",
    "FLAG_NO_PROFILING",
    "PATH_GROW",
    "PATH_LARGE",
    "PATH_MEMCLR",
    "PATH_PROFILE",
    "PATH_REFILL",
    "PATH_SETTYPE_FLUSH",
    "alloc",
    "alloc_noscan",
    "alloc_path",
    "alloc_path_reset",
    "alloc_typed",
    "free",
    "gc",
    "get_root",
    "load",
    "load_byte",
    "lookup",
    "num_gc",
    "pop_root",
    "push_root",
    "race_func_enter",
    "race_func_exit",
    "set_profile_bucket",
    "set_root",
    "set_shadow_depth",
    "settype_flush_arrays",
    "shadow_depth",
    "stack_load",
    "stack_release",
    "stack_reserve",
    "stack_store",
    "store",
    "store_byte",
]
