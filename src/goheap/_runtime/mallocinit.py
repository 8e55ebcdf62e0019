"""mallocinit: build one heap's runtime state. See :mod:`goheap._runtime.malloc` for the overview.

The reservation holds the bitmap directly below the arena, as on the seed's 64-bit
layout, at Go's hint address when it is free (bitmap at 0xc000000000, so a default heap's
arena starts at 0xc200000000) and anywhere otherwise. Every metadata array is sized from
the arena and paged in lazily (the seed's change, taken all the way).

The size classes and the page size are the heap's policy's (:mod:`goheap.policy`): the
tables go into the state arrays (their length is the heap's NumSizeClasses), the page
shift and the limits derived from it into ``h``, where compiled code reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, InvalidSize
from . import layout as L
from ._jit import jit_entry
from .constants import (
    ARENA_HINT_BITMAP,
    BITMAP_DIVISOR,
    HEAP_ALLOC_CHUNK,
    MAX_GCPROC,
    MAX_MEM,
    MHEAP_LIST_BYTES,
    NUM_SIZE_CLASSES,
    PAGE_SHIFT,
    PAUSE_HISTORY,
    SIZEOF_MCACHE_FIXED,
    SIZEOF_MCACHE_PER_CLASS,
    SIZEOF_MCENTRAL,
    SIZEOF_MHEAP_FIXED,
    SIZEOF_MSPAN,
)
from .mheap import mheap_init, mspanlist_init
from .raceshadow import RaceSizes, build_race_arrays
from .sizeclasses import SizeClasses, init_sizes
from .sysmem import SysMem, array_at, metadata_array
from .units import N_UNITS

INT64_MAX = (1 << 63) - 1

def mheap_record_bytes(arena_size: int, page_shift: int = PAGE_SHIFT, nclasses: int = NUM_SIZE_CLASSES) -> int:
    """What sizeof(MHeap) would be for an arena of this size (charged to Sys at start-up).

    8 bytes of span map per arena page, an MSpan list head per exact free list and one
    for ``large``, an MCentral per size class, and the scalars: 268,476,544 bytes for the
    seed's 128 GB arena, 4 KB pages and 61 classes.
    """
    max_mheap_list = MHEAP_LIST_BYTES >> page_shift
    return (arena_size >> page_shift) * 8 + SIZEOF_MSPAN * (max_mheap_list + 1) + SIZEOF_MCENTRAL * nclasses + SIZEOF_MHEAP_FIXED


def mcache_record_bytes(nclasses: int = NUM_SIZE_CLASSES) -> int:
    """sizeof(MCache): its lists and BySize counters per class (2024 bytes for the seed's 61)."""
    return SIZEOF_MCACHE_FIXED + SIZEOF_MCACHE_PER_CLASS * nclasses


@dataclass(frozen=True)
class Limits:
    """Capacities of the metadata tables that are not fixed by the arena.

    Each is an int in the range ``LIMIT_RANGES`` gives (ConfigError otherwise): at least one
    of each (no finalizers at all is allowed), and at most what fits in memory or address
    space (tables allocated eagerly are bounded tighter than those paged in lazily).
    """

    max_threads: int = 64
    shadow_depth: int = 1 << 16
    root_slots: int = 1 << 20
    global_regions: int = 1 << 10
    region_pointer_words: int = 1 << 20
    finalizers: int = 1 << 20
    finalizer_queue: int = 1 << 16
    types: int = 1 << 16
    type_pointer_words: int = 1 << 22
    profile_buckets: int = 1 << 16
    gctrace_rows: int = 1 << 16

    def __post_init__(self) -> None:
        for name, (lo, hi) in LIMIT_RANGES.items():
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
                raise ConfigError(f"Limits.{name} must be an int, not {value!r}")
            if not lo <= value <= hi:
                raise ConfigError(f"Limits.{name} is {value}: it must be in {lo}..{hi}")


LIMIT_RANGES = {
    "max_threads": (1, 1 << 12),  # the per-cache tables are allocated at once
    "shadow_depth": (1, 1 << 28),
    "root_slots": (1, 1 << 32),
    "global_regions": (1, 1 << 16),
    "region_pointer_words": (1, 1 << 32),
    "finalizers": (0, 1 << 32),
    "finalizer_queue": (1, 1 << 32),
    "types": (1, 1 << 24),
    "type_pointer_words": (1, 1 << 32),
    "profile_buckets": (1, 1 << 24),
    "gctrace_rows": (1, 1 << 24),
}


def workbuf_rows(arena_size: int) -> int:
    """Workbufs enough for any mark: every queued Obj is a distinct marked block of >= 8 bytes.

    Full buffers hold more than 339 - 64 objects (flushptrbuf moves on before a batch of 64
    could overflow one); handoff leaves at most one partly filled buffer on the full list,
    and each proc holds one more. Lazily paged: only the buffers a mark uses cost memory.
    """
    return arena_size // (8 * (L.WORKBUF_NOBJ - L.PTRBUF_LEN)) + 2 * MAX_GCPROC + 8


def gcroot_rows(npages: int, limits: Limits) -> int:
    """Roots of one collection: handles, regions, typed spans, stacks, finalizers, FinBlocks."""
    finblocks = limits.finalizer_queue // L.FINBLOCK_CAP + 1
    return 1 + limits.global_regions + npages + limits.max_threads + limits.finalizers + finblocks


def check_arena_size(arena_size: int) -> None:
    if (
        not isinstance(arena_size, (int, np.integer))
        or isinstance(arena_size, (bool, np.bool_))
        or arena_size < HEAP_ALLOC_CHUNK
        or arena_size % HEAP_ALLOC_CHUNK
    ):
        raise InvalidSize(f"arena size {arena_size!r} must be a positive multiple of {HEAP_ALLOC_CHUNK} (1 MB)")
    if arena_size > MAX_MEM * 8:
        raise InvalidSize(f"arena size {arena_size} is larger than the {MAX_MEM * 8 >> 30} GB goheap supports")


def build_runtime(
    sysmem: SysMem, arena_size: int, limits: Limits, race: RaceSizes | None = None, classes: SizeClasses | None = None
) -> L.RuntimeArrays:
    """Reserve the arena and allocate every metadata array (mallocinit steps 1-8).

    race: build the race detector's shadow and tables too (raceinit), with these sizes.
    classes: the size classes and their page size (the seed's when None).
    """
    check_arena_size(arena_size)
    classes = classes if classes is not None else init_sizes()
    page_shift = classes.page_size.bit_length() - 1
    nclasses = classes.num_classes
    bitmap_size = arena_size // BITMAP_DIVISOR
    base = sysmem.sys_reserve(ARENA_HINT_BITMAP, bitmap_size + arena_size, "the heap arena")
    arena_start = base + bitmap_size
    npages = arena_size >> page_shift
    nc = limits.max_threads

    def meta(shape, dtype=np.int64):
        return metadata_array(sysmem, shape, dtype)

    rt = L.RuntimeArrays(
        mem=array_at(base, bitmap_size + arena_size, np.int64),
        mem8=array_at(base, bitmap_size + arena_size, np.uint8),
        h=np.zeros(L.H_NSLOTS, np.int64),
        mstats=np.zeros(L.ST_NSLOTS, np.int64),
        by_size=np.zeros((nclasses, 3), np.int64),
        pause_ns=np.zeros(PAUSE_HISTORY, np.int64),
        spans=meta((L.FIRST_SPAN + npages + 1, L.SP_NFIELDS)),
        spanmap=meta(npages, np.int32),
        fixalloc=np.zeros((2, L.FA_NSLOTS), np.int64),
        central_nfree=np.zeros(nclasses, np.int64),
        cache_list=np.zeros((nc, nclasses, 3), np.int64),
        cache_local=np.zeros((nc, L.LC_NSLOTS), np.int64),
        cache_by_size=np.zeros((nc, nclasses, 2), np.int64),
        class_to_size=classes.class_to_size.copy(),
        class_to_allocnpages=classes.class_to_allocnpages.copy(),
        class_to_transfercount=classes.class_to_transfercount.copy(),
        size_to_class8=classes.size_to_class8.copy(),
        size_to_class128=classes.size_to_class128.copy(),
        scratch=np.zeros(8, np.int64),
        gcstats=np.zeros(L.GS_NSLOTS, np.int64),
        workbuf=meta((workbuf_rows(arena_size), L.WB_NSLOTS)),
        gcroots=meta((gcroot_rows(npages, limits), L.GR_NSLOTS)),
        gcproc=np.zeros((MAX_GCPROC, L.GP_NSLOTS), np.int64),
        ptrbuf=np.zeros((MAX_GCPROC, L.PTRBUF_LEN, L.PT_NSLOTS), np.int64),
        parfor=np.zeros((2, L.PF_NSLOTS + MAX_GCPROC * L.PFT_NSLOTS), np.int64),
        roots=np.zeros((limits.global_regions, L.RG_NSLOTS), np.int64),
        rootptrs=meta(limits.region_pointer_words),
        finq=meta(limits.finalizer_queue),
        fintab=np.zeros((L.FINTAB_SHARDS, L.FT_NSLOTS), np.int64),
        gctrace_log=meta((limits.gctrace_rows, L.TR_NSLOTS)),
        prof=meta((limits.profile_buckets, L.PB_NSLOTS)),
        profaddr=meta(arena_size // 8, np.int32),
        settype_buf=np.zeros((nc, L.SETTYPE_BUF_LEN), np.int64),
        typedesc=np.zeros((limits.types, L.TD_NSLOTS), np.int64),
        typeptrs=meta(limits.type_pointer_words),
        rootslots=meta(limits.root_slots),
        shadow=meta((nc, limits.shadow_depth)),
        **build_race_arrays(sysmem, arena_size, limits.root_slots, race),
        code=np.zeros(N_UNITS, np.int64),
    )
    h = rt.h
    h[L.H_BASE] = base
    h[L.H_ARENA_START] = arena_start
    h[L.H_ARENA_USED] = arena_start
    h[L.H_ARENA_END] = arena_start + arena_size
    h[L.H_FASTRAND] = 0x49F6428A
    h[L.H_NTYPES] = 1  # row 0: "no type"
    h[L.H_NPROC] = 1
    h[L.H_NGOROUTINES] = 1
    h[L.H_MAX_FINALIZERS] = limits.finalizers
    h[L.H_RACE] = 0 if race is None else 1
    h[L.H_PAGE_SHIFT] = page_shift
    h[L.H_MAX_MHEAP_LIST] = MHEAP_LIST_BYTES >> page_shift
    h[L.H_SPANMAP_SYS] = npages * 8
    h[L.H_MEMORY_LIMIT] = -1
    h[L.H_SCAVENGE_RETAIN] = -1
    h[L.H_SCAVENGE_GOAL] = INT64_MAX
    rt.mstats[L.ST_SYS] = mheap_record_bytes(arena_size, page_shift, nclasses)
    rt.by_size[:, L.BY_SIZE_SIZE] = classes.class_to_size
    fa = rt.fixalloc
    fa[L.FA_SPAN, L.FA_SIZE] = SIZEOF_MSPAN
    fa[L.FA_SPAN, L.FA_NEXT] = L.FIRST_SPAN
    fa[L.FA_SPAN, L.FA_CAP] = rt.spans.shape[0]
    fa[L.FA_CACHE, L.FA_SIZE] = mcache_record_bytes(nclasses)
    fa[L.FA_CACHE, L.FA_CAP] = nc
    _init_lists(L.as_runtime(rt))
    return rt


@jit_entry
def _init_lists(runtime):
    rt = L.runtime_ref(runtime)
    mheap_init(rt)
    for c in range(rt.class_to_size.shape[0]):
        mspanlist_init(rt, L.NONEMPTY_HEAD0 + c)
        mspanlist_init(rt, L.EMPTY_HEAD0 + c)
