"""Entry points for the Python shell: each takes a heap handle (see ``handle.py``) and a cache row.

See :mod:`goheap._runtime.malloc` for the overview. These are thin: they turn the handle
into a RuntimeRef and call the compiled runtime, so a call from Python costs one dispatch
of a few integers. The shell calls the hottest ones (``HOT``) through their machine code
directly, skipping even the dispatch (``_jit.entry_point``).
"""

from __future__ import annotations

from numba import types

from . import api
from ._jit import jit_entry
from .gc.collect import cachestats
from .bitmap import get_bits
from .handle import runtime_at
from .layout import H_ARENA_START, H_ARENA_USED, LC_LOCAL_NLOOKUP
from .malloc import free_check, gettype, mlookup, settype_flush
from .mcache import allocmcache, freemcache
from .gc import finalizers
from .mheap import mheap_scavenge
from .mheap import nanotime as mheap_nanotime


@jit_entry
def mallocgc(handle, c, size, flag, dogc, zeroed):
    return api.mallocgc(runtime_at(handle), c, size, flag, dogc, zeroed)


@jit_entry
def alloc(handle, c, size, flag, zeroed):
    """mallocgc with dogc: what Heap.alloc calls."""
    return api.mallocgc(runtime_at(handle), c, size, flag, True, zeroed)


@jit_entry
def malloc_typed(handle, c, size, flag, typ):
    """mallocgc then settype (new/makeslice of a type with pointers)."""
    rt = runtime_at(handle)
    v = api.mallocgc(rt, c, size, flag, True, True)
    if v > 0 and typ != 0:
        api.settype(rt, c, v, typ)
    return v


@jit_entry
def free(handle, c, v):
    return api.free(runtime_at(handle), c, v)


@jit_entry
def block_bits(handle, v):
    """The four bitmap bits of the word at v (as BIT_* values), 0 outside the used arena."""
    rt = runtime_at(handle)
    if v < rt.h[H_ARENA_START] or v >= rt.h[H_ARENA_USED]:
        return 0
    return get_bits(rt, v)


@jit_entry
def check_free(handle, v):
    return free_check(runtime_at(handle), v)


@jit_entry
def lookup(handle, c, v):
    return mlookup(runtime_at(handle), c, v)


@jit_entry
def gc(handle, c, force):
    return api.gc(runtime_at(handle), c, force)


@jit_entry
def new_cache(handle):
    return allocmcache(runtime_at(handle))


@jit_entry
def release_cache(handle, c):
    """A thread is done with cache c: apply its pending settype calls, then freemcache."""
    rt = runtime_at(handle)
    settype_flush(rt, c)
    freemcache(rt, c)


@jit_entry
def read_stats(handle):
    """cachestats with the world stopped, as ReadMemStats does."""
    cachestats(runtime_at(handle))


@jit_entry
def scavenge(handle, now, limit):
    return mheap_scavenge(runtime_at(handle), now, limit)


@jit_entry
def flush_types(handle, c):
    settype_flush(runtime_at(handle), c)


@jit_entry
def type_of(handle, v):
    return gettype(runtime_at(handle), v)


@jit_entry
def settype(handle, c, v, typ):
    api.settype(runtime_at(handle), c, v, typ)


@jit_entry
def add_finalizer(handle, c, p):
    """runtime.SetFinalizer(p, f): 1, 0 if p already has a finalizer, or E_OUT_OF_MEMORY (nothing changed).

    SetFinalizer finds p's block with mlookup first (MemStats.Lookups counts it), then addfinalizer.
    """
    rt = runtime_at(handle)
    rt.cache_local[c, LC_LOCAL_NLOOKUP] += 1
    return finalizers.addfinalizer(rt, c, p)


@jit_entry
def remove_finalizer(handle, p):
    """SetFinalizer(p, nil): forget p's finalizer; the special bit is left alone, as in the seed."""
    return finalizers.getfinalizer(runtime_at(handle), p, True)


@jit_entry
def has_finalizer(handle, p):
    return finalizers.getfinalizer(runtime_at(handle), p, False)


@jit_entry
def nanotime(handle):
    return mheap_nanotime(runtime_at(handle))


# The entry points Heap calls on every operation, with the types it calls them with.
HOT = {
    "alloc": (alloc, (types.int64, types.int64, types.int64, types.int64, types.boolean)),
    "free": (free, (types.int64, types.int64, types.int64)),
    "lookup": (lookup, (types.int64, types.int64, types.int64)),
}
@jit_entry
def push_root(handle, c, v):
    return api.push_root(runtime_at(handle), c, v)


@jit_entry
def pop_root(handle, c):
    return api.pop_root(runtime_at(handle), c)
