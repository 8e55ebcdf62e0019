"""Entry points for the Python shell: each takes a heap handle (see ``handle.py``) and a cache row.

See :mod:`goheap._runtime.malloc` for the overview. These are thin: they rebuild the
Runtime from the handle and call the compiled runtime, so a call from Python costs one
dispatch of a few integers.
"""

from __future__ import annotations

from . import api
from ._jit import jit
from .gc.collect import cachestats
from .bitmap import get_bits
from .handle import runtime_at
from .layout import H_ARENA_START, H_ARENA_USED
from .malloc import free_check, gettype, mlookup, settype_flush
from .mcache import allocmcache, freemcache
from .gc import finalizers
from .mheap import mheap_scavenge
from .mheap import nanotime as mheap_nanotime


@jit
def mallocgc(handle, c, size, flag, dogc, zeroed):
    return api.mallocgc(runtime_at(handle), c, size, flag, dogc, zeroed)


@jit
def malloc_typed(handle, c, size, flag, typ):
    """mallocgc then settype (new/makeslice of a type with pointers)."""
    rt = runtime_at(handle)
    v = api.mallocgc(rt, c, size, flag, True, True)
    if v > 0 and typ != 0:
        api.settype(rt, c, v, typ)
    return v


@jit
def free(handle, c, v):
    return api.free(runtime_at(handle), c, v)


@jit
def block_bits(handle, v):
    """The four bitmap bits of the word at v (as BIT_* values), 0 outside the used arena."""
    rt = runtime_at(handle)
    if v < rt.h[H_ARENA_START] or v >= rt.h[H_ARENA_USED]:
        return 0
    return get_bits(rt, v)


@jit
def check_free(handle, v):
    return free_check(runtime_at(handle), v)


@jit
def lookup(handle, c, v):
    return mlookup(runtime_at(handle), c, v)


@jit
def gc(handle, c, force):
    return api.gc(runtime_at(handle), c, force)


@jit
def new_cache(handle):
    return allocmcache(runtime_at(handle))


@jit
def release_cache(handle, c):
    freemcache(runtime_at(handle), c)


@jit
def read_stats(handle):
    """cachestats with the world stopped, as ReadMemStats does."""
    cachestats(runtime_at(handle))


@jit
def scavenge(handle, now, limit):
    return mheap_scavenge(runtime_at(handle), now, limit)


@jit
def flush_types(handle, c):
    settype_flush(runtime_at(handle), c)


@jit
def type_of(handle, v):
    return gettype(runtime_at(handle), v)


@jit
def settype(handle, c, v, typ):
    api.settype(runtime_at(handle), c, v, typ)


@jit
def add_finalizer(handle, c, p):
    """addfinalizer: 1, 0 if p already has a finalizer, or E_OUT_OF_MEMORY (nothing changed)."""
    return finalizers.addfinalizer(runtime_at(handle), c, p)


@jit
def remove_finalizer(handle, p):
    """SetFinalizer(p, nil): forget p's finalizer; the special bit is left alone, as in the seed."""
    return finalizers.getfinalizer(runtime_at(handle), p, True)


@jit
def has_finalizer(handle, p):
    return finalizers.getfinalizer(runtime_at(handle), p, False)


@jit
def nanotime(handle):
    return mheap_nanotime(runtime_at(handle))


@jit
def push_root(handle, c, v):
    return api.push_root(runtime_at(handle), c, v)


@jit
def pop_root(handle, c):
    return api.pop_root(runtime_at(handle), c)
