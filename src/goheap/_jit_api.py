"""Implementation of :mod:`goheap.nb` (kept apart so that ``nb`` reads as the API list)."""

from __future__ import annotations

from ._runtime import api
from ._runtime._jit import jit
from ._runtime.constants import FLAG_NO_GC, FLAG_NO_POINTERS, FLAG_NO_PROFILING, TYPEINFO_ARRAY
from ._runtime.layout import E_OUT_OF_MEMORY, H_BASE, H_PROF_STACK, LC_SHADOW_SP, TYPE_TAG_BITS
from ._runtime.malloc import mlookup

__all__ = ["FLAG_NO_GC", "FLAG_NO_POINTERS", "FLAG_NO_PROFILING"]


@jit
def alloc(rt, c, size):
    """new/mal: a zeroed block of size bytes that may hold pointers; may collect first."""
    return api.mallocgc(rt, c, size, 0, True, True)


@jit
def alloc_noscan(rt, c, size):
    """A zeroed block the collector never scans ([]byte, []float64, strings)."""
    return api.mallocgc(rt, c, size, FLAG_NO_POINTERS, True, True)


@jit
def alloc_typed(rt, c, size, type_id, array):
    """new(T) / make([]T, n): a block scanned precisely as type ``type_id`` (one element, or an array)."""
    v = api.mallocgc(rt, c, size, 0, True, True)
    if v > 0:
        tag = TYPEINFO_ARRAY if array else 0
        api.settype(rt, c, v, (type_id << TYPE_TAG_BITS) | tag)
    return v


@jit
def free(rt, c, v):
    return api.free(rt, c, v)


@jit
def gc(rt, c):
    """runtime.GC()."""
    return api.gc(rt, c, True)


@jit
def lookup(rt, c, v):
    """(base, size) of the block holding v, or (0, 0)."""
    base, size, _ = mlookup(rt, c, v)
    return base, size


@jit
def load(rt, addr):
    return rt.mem[(addr - rt.h[H_BASE]) >> 3]


@jit
def store(rt, addr, value):
    rt.mem[(addr - rt.h[H_BASE]) >> 3] = value


@jit
def load_byte(rt, addr):
    return rt.mem8[addr - rt.h[H_BASE]]


@jit
def store_byte(rt, addr, value):
    rt.mem8[addr - rt.h[H_BASE]] = value


@jit
def push_root(rt, c, v):
    """Push v on this thread's shadow stack; returns its slot."""
    return api.push_root(rt, c, v)


@jit
def pop_root(rt, c):
    return api.pop_root(rt, c)


@jit
def set_root(rt, c, slot, v):
    """Set shadow-stack slot ``slot`` (growing the stack to cover it); E_OUT_OF_MEMORY past its end, else 0."""
    if slot < 0 or slot >= rt.shadow.shape[1]:
        return E_OUT_OF_MEMORY
    if slot >= rt.cache_local[c, LC_SHADOW_SP]:
        rt.cache_local[c, LC_SHADOW_SP] = slot + 1
    rt.shadow[c, slot] = v
    return 0


@jit
def get_root(rt, c, slot):
    """Shadow-stack slot ``slot`` (0 past the stack's top)."""
    if slot < 0 or slot >= rt.cache_local[c, LC_SHADOW_SP]:
        return 0
    return rt.shadow[c, slot]


@jit
def shadow_depth(rt, c):
    return rt.cache_local[c, LC_SHADOW_SP]


@jit
def set_shadow_depth(rt, c, depth):
    """Pop (or clear) the shadow stack down to ``depth`` slots, or grow it to ``depth`` (clamped to its capacity)."""
    depth = min(max(depth, 0), rt.shadow.shape[1])
    for k in range(depth, rt.cache_local[c, LC_SHADOW_SP]):
        rt.shadow[c, k] = 0
    rt.cache_local[c, LC_SHADOW_SP] = depth


@jit
def set_profile_bucket(rt, bucket):
    """Charge sampled allocations from now on to profile bucket ``bucket`` (a function id)."""
    rt.h[H_PROF_STACK] = bucket
