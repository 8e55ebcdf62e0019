"""The compiled entry points: what the Python shell and ``@njit`` mutators call.

See :mod:`goheap._runtime.malloc` for the overview. This is the top layer: mallocgc is
malloc_nogc plus the GC trigger, so it sits above both the allocator and the collector.
Every function takes the heap's ``Runtime`` tuple and the calling thread's cache row.
"""

from __future__ import annotations

from ._jit import jit, jit_inline
from .bitmap import blockspecial
from .gc import collect
from .gc.finalizers import getfinalizer
from .layout import E_OUT_OF_MEMORY, H_ARENA_START, H_ARENA_USED, H_BASE, H_RACE, LC_SHADOW_SP, ST_HEAP_ALLOC, ST_NEXT_GC
from .malloc import free as malloc_free
from .malloc import malloc_nogc, mlookup, settype
from .race import race_stop_the_world, racemalloc

__all__ = ["free", "gc", "load", "malloc", "mallocgc", "mlookup", "pop_root", "push_root", "settype", "store"]


@jit_inline
def mallocgc(rt, c, size, flag, dogc, zeroed):
    """Allocate size bytes; with dogc, collect first if the (lagging) heap_alloc reached next_gc.

    Returns the address, or a negative E_* code (nothing changed).
    """
    v = malloc_nogc(rt, c, size, flag, zeroed)
    if v > 0 and dogc and rt.mstats[ST_HEAP_ALLOC] >= rt.mstats[ST_NEXT_GC]:
        # the new block must survive the collection it triggers: the seed's caller still holds
        # it. With the thread's shadow stack full there is no slot to hold it in, and the
        # collection waits for the next allocation.
        if push_root(rt, c, v) >= 0:
            gc(rt, c, False)
            pop_root(rt, c)
    if v > 0 and rt.h[H_RACE] != 0:
        racemalloc(rt, v)  # race mode: the block starts with no access history (step 11)
    return v


@jit
def free(rt, c, v):
    """runtime.free; a freed block also loses its finalizer (the seed's free is runtime-only and never meets one).

    Returns 0 or a negative E_* code (nothing changed).
    """
    special = v >= rt.h[H_ARENA_START] and v < rt.h[H_ARENA_USED] and blockspecial(rt, v)
    err = malloc_free(rt, c, v)
    if err == 0 and special:
        getfinalizer(rt, v, True)
    return err


@jit
def gc(rt, c, force):
    """runtime.gc (see gc/collect.py); in race mode its stop-the-world is also a full barrier."""
    ran = collect.gc(rt, c, force)
    if ran and rt.h[H_RACE] != 0:
        race_stop_the_world(rt)
    return ran


@jit
def malloc(rt, c, size, flag):
    """new/mal: a zeroed block that may trigger a collection."""
    return mallocgc(rt, c, size, flag, True, True)


@jit
def load(rt, addr):
    """The word at addr."""
    return rt.mem[(addr - rt.h[H_BASE]) >> 3]


@jit
def store(rt, addr, value):
    """Write the word at addr (no write barrier: the collector is stop-the-world)."""
    rt.mem[(addr - rt.h[H_BASE]) >> 3] = value


@jit
def push_root(rt, c, v):
    """Push v on thread c's shadow stack (a conservatively scanned root, like a stack slot).

    Returns its slot, or E_OUT_OF_MEMORY (nothing pushed) when the stack is full.
    """
    sp = rt.cache_local[c, LC_SHADOW_SP]
    if sp >= rt.shadow.shape[1]:
        return E_OUT_OF_MEMORY
    rt.shadow[c, sp] = v
    rt.cache_local[c, LC_SHADOW_SP] = sp + 1
    return sp


@jit
def pop_root(rt, c):
    """Pop the top of thread c's shadow stack and return it (0 if the stack is empty)."""
    sp = rt.cache_local[c, LC_SHADOW_SP] - 1
    if sp < 0:
        return 0
    rt.cache_local[c, LC_SHADOW_SP] = sp
    v = rt.shadow[c, sp]
    rt.shadow[c, sp] = 0
    return v
