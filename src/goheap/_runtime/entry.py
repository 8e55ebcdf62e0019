"""Entry points for the Python shell: each takes a heap handle (see ``handle.py``) and a cache row.

See :mod:`goheap._runtime.malloc` for the overview. These are thin: they turn the handle
into a RuntimeRef and call the compiled runtime, so a call from Python costs one dispatch
of a few integers. The shell calls the hottest ones (``HOT``) through their machine code
directly, skipping even the dispatch (``_jit.entry_point``).
"""

from __future__ import annotations

import numba
from numba import types

from . import api, race
from ._jit import jit_entry
from .gc import gchelper, mark
from .gc.collect import cachestats, gc_repeat, gc_unit
from .bitmap import get_bits
from . import layout, mallocinit
from .handle import runtime_at
from .layout import E_OUTSIDE_BLOCK, E_STACK_FULL, E_UNALIGNED, H_ARENA_START, H_ARENA_USED, H_BASE, H_ERR_ARG, LC_LOCAL_NLOOKUP, LC_SHADOW_SP, ST_NEXT_GC
from .malloc import free_check, gettype, mlookup, mlookup_allocated, settype_flush
from .mcache import allocmcache, freemcache
from .gc import finalizers
from .mheap import mheap_next_release, mheap_scavenge, mheap_scavenge_top
from .mheap import nanotime as mheap_nanotime
from .mheap import mheap_alloc_unit, mheap_free_unit
from .pacer import heap_goal, scavenge_need
from .units import UNIT_GC, UNIT_GC_PROCS, UNIT_MARK, UNIT_MHEAP_ALLOC, UNIT_MHEAP_FREE, UNIT_RACE, unit_address


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
def alloc_rooted(handle, c, size, flag, zeroed, typ):
    """Scope.alloc: mallocgc (then settype, if typ) and push the block on thread c's shadow stack.

    One compiled call, so no collection can come between the allocation and the push. The
    stack's room is checked first: E_STACK_FULL (nothing allocated) when it has none.
    """
    rt = runtime_at(handle)
    if rt.cache_local[c, LC_SHADOW_SP] >= rt.shadow.shape[1]:
        rt.h[H_ERR_ARG] = rt.shadow.shape[1]
        return E_STACK_FULL
    v = api.mallocgc(rt, c, size, flag, True, zeroed)
    if v > 0:
        if typ != 0:
            api.settype(rt, c, v, typ)
        api.push_root(rt, c, v)
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
def lookup_allocated(handle, c, v):
    """Heap.lookup: (base, size, 0) of the allocated block holding v, else (0, 0, E_*)."""
    return mlookup_allocated(runtime_at(handle), c, v)


@jit_entry
def word_index(handle, c, p, i):
    """Heap.load_word/store_word: the index in mem of word i of the allocated block at p, or E_*.

    p must be word-aligned and inside an allocated block (interior pointers allowed), and
    word i, counted from p, inside the same block. On error h[H_ERR_ARG] is p.
    """
    rt = runtime_at(handle)
    rt.h[H_ERR_ARG] = p
    if p & 7:
        return E_UNALIGNED
    base, size, err = mlookup_allocated(rt, c, p)
    if err != 0:
        return err
    if i < 0 or i >= (base + size - p) >> 3:
        return E_OUTSIDE_BLOCK
    return (p + 8 * i - rt.h[H_BASE]) >> 3


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
def next_release(handle, t0, limit):
    return mheap_next_release(runtime_at(handle), t0, limit)


@jit_entry
def repeat_gc(handle, n, t_first, period):
    gc_repeat(runtime_at(handle), n, t_first, period)


@jit_entry
def scavenge_to_goal(handle):
    """The retained-heap scavenger's round (a policy's Go 1.19 rule): release down to its goal."""
    rt = runtime_at(handle)
    return mheap_scavenge_top(rt, scavenge_need(rt, 0))


@jit_entry
def commit_pacer(handle):
    """gcControllerCommit: recompute next_gc now (SetGCPercent, SetMemoryLimit under a Go >= 1.5 pacer)."""
    rt = runtime_at(handle)
    rt.mstats[ST_NEXT_GC] = heap_goal(rt)


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
def take_finalizer_queue(handle):
    return finalizers.finq_take(runtime_at(handle))


@jit_entry
def unqueue_finalizer(handle, p):
    return finalizers.finq_remove(runtime_at(handle), p)


@jit_entry
def queue_finalizer(handle, p):
    return finalizers.finq_push(runtime_at(handle), p)


@jit_entry
def nanotime(handle):
    return mheap_nanotime(runtime_at(handle))


@jit_entry
def push_root(handle, c, v):
    return api.push_root(runtime_at(handle), c, v)


@jit_entry
def pop_root(handle, c):
    return api.pop_root(runtime_at(handle), c)


_I, _B = types.int64, types.boolean

#: The entry points every run goes through, with the types the shell calls them with
#: (Python ints and bools): compiled before a run by :func:`compile_entry_points`.
SIGNATURES = {
    alloc: (_I, _I, _I, _I, _B),
    free: (_I, _I, _I),
    lookup: (_I, _I, _I),
    lookup_allocated: (_I, _I, _I),
    word_index: (_I, _I, _I, _I),
    mallocgc: (_I, _I, _I, _I, _B, _B),
    malloc_typed: (_I, _I, _I, _I, _I),
    new_cache: (_I,),
    release_cache: (_I, _I),
    read_stats: (_I,),
    gc: (_I, _I, _B),
    push_root: (_I, _I, _I),
    pop_root: (_I, _I),
    add_finalizer: (_I, _I, _I),
    block_bits: (_I, _I),
    check_free: (_I, _I),
}

# The entry points Heap calls on every operation, through their machine code.
HOT = {
    name: (fn, SIGNATURES[fn])
    for name, fn in (("alloc", alloc), ("free", free), ("lookup", lookup_allocated), ("word_index", word_index))
}

UNITS = {
    UNIT_MHEAP_ALLOC: mheap_alloc_unit,
    UNIT_MHEAP_FREE: mheap_free_unit,
    UNIT_GC: gc_unit,
    UNIT_MARK: mark.mark_serial_unit,
    UNIT_GC_PROCS: gchelper.gc_procs_unit,
    UNIT_RACE: race.race_unit,
}


def units_of(*, race_mode: bool, nproc: int) -> list[int]:
    """The units a heap can reach: the page heap and the collector always; the interleaved
    collector only with nproc > 1; the race detector only in race mode."""
    slots = [UNIT_MHEAP_ALLOC, UNIT_MHEAP_FREE, UNIT_GC, UNIT_MARK]
    if nproc > 1:
        slots.append(UNIT_GC_PROCS)
    if race_mode:
        slots.append(UNIT_RACE)
    return slots


def load_units(code, *, race_mode: bool, nproc: int) -> None:
    """Fill a new heap's ``code`` array with the units it can reach (see units.py), compiling them if need be."""
    for slot in units_of(race_mode=race_mode, nproc=nproc):
        code[slot] = unit_address(slot, UNITS[slot])


# ---------------------------------------------------------------- compile jobs (see prepare.py)


def compile_unit(slot: int) -> None:
    unit_address(slot, UNITS[slot])


def compile_entry_points(race_mode: bool) -> None:
    """Compile (or load from the cache) what building a heap and its every operation need."""
    if numba.config.DISABLE_JIT:
        return
    plain = layout.RUNTIME_TYPE
    runtime_type = layout.RACE_RUNTIME_TYPE if race_mode else plain
    arrays = tuple(plain.field_dict[name] for name in layout.RuntimeArrays._fields)
    for struct_type in {plain, runtime_type}:
        layout._new_runtime.compile((types.TypeRef(struct_type), *arrays))
    mallocinit._init_lists.compile((plain,))
    for fn, signature in SIGNATURES.items():
        fn.compile(signature)
