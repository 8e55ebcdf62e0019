"""Implementation of :mod:`goheap.nb` (kept apart so that ``nb`` reads as the API list).

Each function turns the ``Runtime`` it is given into a borrowed ``RuntimeRef`` first (see
``_runtime/layout.py``), so that nothing below it pays for reference counting.
"""

from __future__ import annotations

import numpy as np
from ._runtime import api
from ._runtime._jit import jit_entry
from ._runtime.constants import FLAG_NO_GC, FLAG_NO_POINTERS, FLAG_NO_PROFILING, TYPEINFO_ARRAY
from numba.core.extending import overload

from ._runtime.layout import (
    E_OUT_OF_MEMORY,
    LC_ALLOC_PATH,
    LC_FLUSH_BYTES,
    LC_FLUSH_NEW,
    PATH_GROW,
    PATH_LARGE,
    PATH_MEMCLR,
    PATH_PROFILE,
    PATH_REFILL,
    PATH_SETTYPE_FLUSH,
    ST_NUMGC,
    H_BASE,
    H_PROF_STACK,
    H_RACE,
    LC_SHADOW_SP,
    TYPE_TAG_BITS,
    RaceRuntimeType,
    RuntimeType,
    runtime_ref,
)
from ._runtime.malloc import mlookup
from ._runtime.race import racefuncenter, racefuncexit, raceread, racewrite

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
]

# The indexes of the accessors below (a heap word, a stack slot, a cache row) are never
# negative: given as unsigned, numba leaves out the wraparound of negative indexes that it
# adds to every access otherwise (a compare and an add each, on every load and store a
# compiled mutator makes).
_index = np.uint64


@jit_entry(inline=True)
def alloc(rt, c, size):
    """new/mal: a zeroed block of size bytes that may hold pointers; may collect first."""
    rt = runtime_ref(rt)
    return api.mallocgc(rt, c, size, 0, True, True)


@jit_entry(inline=True)
def alloc_noscan(rt, c, size):
    """A zeroed block the collector never scans ([]byte, []float64, strings)."""
    rt = runtime_ref(rt)
    return api.mallocgc(rt, c, size, FLAG_NO_POINTERS, True, True)


@jit_entry(inline=True)
def alloc_typed(rt, c, size, type_id, array):
    """new(T) / make([]T, n): a block scanned precisely as type ``type_id`` (one element, or an array)."""
    rt = runtime_ref(rt)
    v = api.mallocgc(rt, c, size, 0, True, True)
    if v > 0:
        tag = TYPEINFO_ARRAY if array else 0
        api.settype(rt, c, v, (type_id << TYPE_TAG_BITS) | tag)
    return v


@jit_entry
def free(rt, c, v):
    rt = runtime_ref(rt)
    return api.free(rt, c, v)


@jit_entry
def gc(rt, c):
    """runtime.GC()."""
    rt = runtime_ref(rt)
    return api.gc(rt, c, True)


@jit_entry
def lookup(rt, c, v):
    """(base, size) of the block holding v, or (0, 0)."""
    rt = runtime_ref(rt)
    base, size, _ = mlookup(rt, c, v)
    return base, size


# In race mode (Heap(race=True)) each access is checked first, as 6g's -race
# instrumentation calls raceread/racewrite before a load or store. Whether to check is
# decided when the caller is compiled, from the type of ``rt`` (a race-mode heap's
# runtime is a RaceRuntime): code compiled for an ordinary heap has no check at all.


def race_mode(rt):
    """Whether rt is a race-mode heap's runtime (interpreted: asks the heap)."""
    return rt.h[H_RACE] != 0


@overload(race_mode)
def _race_mode_of_type(rt):
    if isinstance(rt, RaceRuntimeType):
        return lambda rt: True
    if isinstance(rt, RuntimeType):
        return lambda rt: False
    return lambda rt: rt.h[H_RACE] != 0  # a RuntimeRef: the heap knows


@jit_entry
def load(rt, addr):
    race = race_mode(rt)
    rt = runtime_ref(rt)
    if race:
        raceread(rt, addr)
    return rt.mem[_index((addr - rt.h[H_BASE]) >> 3)]


@jit_entry
def store(rt, addr, value):
    race = race_mode(rt)
    rt = runtime_ref(rt)
    if race:
        racewrite(rt, addr)
    rt.mem[_index((addr - rt.h[H_BASE]) >> 3)] = value


@jit_entry
def load_byte(rt, addr):
    race = race_mode(rt)
    rt = runtime_ref(rt)
    if race:
        raceread(rt, addr)
    return rt.mem8[_index(addr - rt.h[H_BASE])]


@jit_entry
def store_byte(rt, addr, value):
    race = race_mode(rt)
    rt = runtime_ref(rt)
    if race:
        racewrite(rt, addr)
    rt.mem8[_index(addr - rt.h[H_BASE])] = value


@jit_entry
def race_func_enter(rt, fn):
    """racefuncenter: entering compiled function ``fn`` (from Heap.race_function), for race reports' stacks.

    Does nothing unless the heap is in race mode. Pair each call with race_func_exit.
    """
    race = race_mode(rt)
    rt = runtime_ref(rt)
    if race:
        racefuncenter(rt, fn)


@jit_entry
def race_func_exit(rt):
    """racefuncexit: returning from the function of the matching race_func_enter."""
    race = race_mode(rt)
    rt = runtime_ref(rt)
    if race:
        racefuncexit(rt)


@jit_entry
def push_root(rt, c, v):
    """Push v on this thread's shadow stack; returns its slot, or -1 when the stack is full."""
    rt = runtime_ref(rt)
    return api.push_root(rt, c, v)


@jit_entry
def pop_root(rt, c):
    rt = runtime_ref(rt)
    return api.pop_root(rt, c)


@jit_entry
def set_root(rt, c, slot, v):
    """Set shadow-stack slot ``slot`` (growing the stack to cover it); E_OUT_OF_MEMORY past its end, else 0."""
    rt = runtime_ref(rt)
    if slot < 0 or slot >= rt.shadow.shape[1]:
        return E_OUT_OF_MEMORY
    if slot >= rt.cache_local[c, LC_SHADOW_SP]:
        rt.cache_local[c, LC_SHADOW_SP] = slot + 1
    rt.shadow[c, slot] = v
    return 0


@jit_entry
def get_root(rt, c, slot):
    """Shadow-stack slot ``slot`` (0 past the stack's top)."""
    rt = runtime_ref(rt)
    if slot < 0 or slot >= rt.cache_local[c, LC_SHADOW_SP]:
        return 0
    return rt.shadow[c, slot]


@jit_entry
def shadow_depth(rt, c):
    rt = runtime_ref(rt)
    return rt.cache_local[c, LC_SHADOW_SP]


@jit_entry
def set_shadow_depth(rt, c, depth):
    """Pop (or clear) the shadow stack down to ``depth`` slots (0 <= depth <= the current depth)."""
    rt = runtime_ref(rt)
    if depth < 0 or depth > rt.cache_local[c, LC_SHADOW_SP]:
        return
    for k in range(depth, rt.cache_local[c, LC_SHADOW_SP]):
        rt.shadow[c, k] = 0
    rt.cache_local[c, LC_SHADOW_SP] = depth


@jit_entry
def stack_reserve(rt, c, nwords):
    """Open a frame of nwords on thread c's stack; returns the index of its first word.

    The words keep whatever the stack held there before (a real stack frame is not cleared):
    until the mutator writes them they are stale, and the collector, which scans every word
    below the top conservatively, sees them, as the seed sees dead slots of goroutine frames.
    """
    rt = runtime_ref(rt)
    base = rt.cache_local[_index(c), LC_SHADOW_SP]
    if base + nwords > rt.shadow.shape[1]:
        raise MemoryError("goheap: thread stack overflow (raise Limits.shadow_depth)")
    rt.cache_local[_index(c), LC_SHADOW_SP] = base + nwords
    return base


@jit_entry
def stack_release(rt, c, base):
    """Close every frame from ``base`` up (a return): the top moves down, the words stay as they were."""
    rt = runtime_ref(rt)
    rt.cache_local[_index(c), LC_SHADOW_SP] = base


@jit_entry
def stack_load(rt, c, i):
    """Word i of thread c's stack."""
    rt = runtime_ref(rt)
    return rt.shadow[_index(c), _index(i)]


@jit_entry
def stack_store(rt, c, i, v):
    """Write word i of thread c's stack (a frame slot, an outgoing argument or a result)."""
    rt = runtime_ref(rt)
    rt.shadow[_index(c), _index(i)] = v


@jit_entry
def set_profile_bucket(rt, bucket):
    """Charge sampled allocations from now on to profile bucket ``bucket`` (a function id)."""
    rt = runtime_ref(rt)
    rt.h[H_PROF_STACK] = bucket


@jit_entry
def num_gc(rt):
    """The number of collections so far (MemStats.NumGC)."""
    rt = runtime_ref(rt)
    return rt.mstats[ST_NUMGC]


@jit_entry
def alloc_path(rt, c):
    """The PATH_* bits of the paths thread c's allocations took since :func:`alloc_path_reset`:
    which of mallocgc's slower paths ran (refill from the central list, a span from the heap,
    clearing a dirty block, a profile sample, a settype flush, a large block)."""
    rt = runtime_ref(rt)
    return rt.cache_local[c, LC_ALLOC_PATH]


@jit_entry
def alloc_path_reset(rt, c):
    rt = runtime_ref(rt)
    rt.cache_local[c, LC_ALLOC_PATH] = 0


@jit_entry
def settype_flush_arrays(rt, c):
    """The span type arrays thread c's last settype flush left in its frames: the last
    MTypes_Bytes array it added to, and the last one it allocated (0 if none yet)."""
    rt = runtime_ref(rt)
    return rt.cache_local[c, LC_FLUSH_BYTES], rt.cache_local[c, LC_FLUSH_NEW]
