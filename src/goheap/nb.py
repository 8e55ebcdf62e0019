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

Roots: each thread's shadow stack (``push_root``/``pop_root``, or slots set with
``set_root`` and read with ``get_root``) is scanned conservatively at every collection,
like a goroutine stack. Collections that run inside compiled code queue the finalizers
they find due; call ``heap.after_compiled()`` when the mutator returns to run them (and to
print gctrace lines).
"""

from __future__ import annotations

from ._jit_api import (
    FLAG_NO_GC,
    FLAG_NO_POINTERS,
    FLAG_NO_PROFILING,
    alloc,
    alloc_noscan,
    alloc_typed,
    free,
    gc,
    get_root,
    load,
    lookup,
    pop_root,
    push_root,
    set_root,
    shadow_depth,
    store,
    store_byte,
    load_byte,
    set_shadow_depth,
    set_profile_bucket,
)

__all__ = [
    "FLAG_NO_GC",
    "FLAG_NO_POINTERS",
    "FLAG_NO_PROFILING",
    "alloc",
    "alloc_noscan",
    "alloc_typed",
    "free",
    "gc",
    "get_root",
    "load",
    "load_byte",
    "lookup",
    "pop_root",
    "push_root",
    "set_profile_bucket",
    "set_root",
    "set_shadow_depth",
    "shadow_depth",
    "store",
    "store_byte",
]
