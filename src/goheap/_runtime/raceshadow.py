"""Race mode's memory: race.c's MapShadow and racemapshadow, and the names of every race array.

See :mod:`goheap._runtime.malloc` for the overview and :mod:`goheap._runtime.race` for the
detector that reads and writes these arrays. This module only lays them out and maps them.

The seed's race.c asks ThreadSanitizer for shadow memory twice: ``raceinit`` maps the
shadow of the program's globals in one ``MapShadow`` call, and ``MHeap_SysAlloc`` calls
``racemapshadow(p, n)`` each time it commits n more bytes of arena. goheap does the same
with its own shadow, built when a heap is built with ``race=True``, sized from the arena
and nothing else:

race_shadow (uint32[2 * arena words])
    Reserved (PROT_NONE) for the whole arena at start-up and made readable and writable by
    :func:`racemapshadow` as the arena grows, so its cost follows ``arena_used``, exactly as
    the bitmap's does. Two 32-bit cells per 8-byte heap word, 8 bytes in all: the word's
    last write epoch ``W`` (at 2k) and its last read ``R`` (at 2k+1). Pages of it are paged
    in only when a heap word they cover is touched.
race_meta (int32[arena words])
    Reserved and mapped beside the shadow: at a block's first word, 1 + the row of
    ``race_allocs`` recording who allocated (and freed) it; TSan's "meta shadow".
race_gshadow (uint32[2 * root slots])
    The globals' shadow (raceinit's single MapShadow): one cell pair per root handle of
    ``heap.roots``, the heap's global variables. Lazily paged.

An *epoch* is a 32-bit cell ``slot << 24 | clock``: a thread slot (0..254) and a value of
that slot's clock (1..2^24-1); 0 means "no access". Slot 255 is never a thread, so an ``R``
cell with slot 255 is special: ``FREED`` (all ones) marks a word of a freed block, any
other value is ``SHARED | node``, the word's reads since its last write kept as a set of
epochs in ``race_rs`` (FastTrack's read-shared vector clock, stored sparsely).

The other arrays (thread table, vector clocks, sync objects, read sets, access history,
allocation records, the report queue, compiled stack nodes) are ordinary lazily paged
metadata. A heap built without race mode gets one-element placeholders for all of them
and never reads them: every hook in the runtime first tests ``h[H_RACE]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._jit import jit
from .layout import H_ARENA_START
from .sysmem import MADV_DONTNEED, PROT_READ, PROT_WRITE, SysMem, array_at, metadata_array, os_madvise, os_mprotect

# ---------------------------------------------------------------- epochs and shadow cells
SLOT_SHIFT = 24
CLOCK_MASK = (1 << SLOT_SHIFT) - 1
CLOCK_MAX = CLOCK_MASK  # a slot's clock passing this triggers a reset (race_reset)
NSLOTS = 256  # width of every vector clock
MAX_THREADS = 255  # slot 255 marks special R cells
SPECIAL = 255 << SLOT_SHIFT  # R cell: read-shared (low 24 bits: node) or freed
FREED = 0xFFFFFFFF
MAX_NODE = CLOCK_MASK - 1  # read-set nodes are 1..MAX_NODE (CLOCK_MASK is FREED's)

# ---------------------------------------------------------------- race_h: detector scalars (int64)
RH_HIST_LEN = 0  # entries of each slot's access history (a power of two)
RH_LAST_PID = 1  # the thread (pthread_self) seen last, and its slot: a one-entry cache
RH_LAST_SLOT = 2
RH_NSLOTS = 3  # slots ever handed out (0..RH_NSLOTS-1)
RH_NGOROUTINES = 4  # goroutine numbers handed out (goroutine 1 is the heap's creator)
RH_QHEAD = 5  # finished slots waiting for reuse, oldest first (linked through TS_QNEXT), -1 = none
RH_QTAIL = 6
RH_RS_NEXT = 7  # next never-used read-set node
RH_RS_FREE = 8  # free read-set nodes, linked through column RS_NEXT
RH_RS_LIVE = 9  # read-set nodes in use
RH_NREPORTS = 10  # races queued in race_reports, not yet taken by the Python shell
RH_DROPPED = 11  # races not queued: the queue was full
RH_NALLOCS = 12  # allocation records ever taken (race_allocs is a ring; a block allocated where one was before reuses its record)
RH_NNODES = 13  # compiled stack nodes in use (row 0 unused)
RH_RESETS = 14  # clock overflows survived (race_reset)
RH_HALT = 15  # halt_on_error: a race found by compiled code raises RaceError there
RH_HANDLE = 16  # the heap's handle, carried by RaceError out of compiled code
RH_SHADOW_WORDS = 17  # arena words whose shadow is mapped
RH_SHADOW_ADDR = 18  # address of race_shadow's reservation
RH_META_ADDR = 19
RH_META_MAPPED = 20  # bytes of race_meta mapped
RH_SYNC_HIGH = 21  # sync rows handed out by the shell (all are cleared by a reset)
RH_NOCC = 22  # rows written to race_occ (a ring)
RH_RACES = 23  # races found, queued or not
RH_LAST_REPORT = 24  # (cur stack, prev slot, kinds) of the last queued race: floods queue once
RH_LAST_EPOCH = 25  # the epoch of the thread in RH_LAST_SLOT: the fast path of an access compares it alone
RH_NSLOTS_ = 32

# ---------------------------------------------------------------- race_thr: one row per slot (int64)
TS_PID = 0  # pthread_self of the thread in the slot (threading.get_ident), 0 = none
TS_STATE = 1
TS_GOID = 2  # goroutine number of the occupant
TS_NODE = 3  # stack of the occupant's next access: see "stack values" below
TS_HPOS = 4  # accesses ever recorded in the slot's history (the next one goes at HPOS % len)
TS_QNEXT = 5
TS_NSLOTS = 8

SLOT_UNUSED = 0
SLOT_RUNNING = 1
SLOT_FINISHED = 2

# ---------------------------------------------------------------- race_hist: access history rows (int64)
# Slot t's history is rows t*len .. t*len+len-1, a ring: GORACE's history_size sets len
# (32K << history_size). A row is written each time an access changes a shadow cell, so
# the stack of any access still named by the shadow can be found again.
HI_ADDR = 0  # the word's address
HI_INFO = 1  # stack value << 32 | clock << 2 | kind
HI_NSLOTS = 2

KIND_READ = 1
KIND_WRITE = 2
KIND_FREE = 3

# ---------------------------------------------------------------- race_rs: read-set nodes (uint32)
RS_WIDTH = 8
RS_EPOCHS = 7  # epochs per node, in columns 0..6 (0 = empty)
RS_NEXT = 7  # next node of the same set, or of the free list

# ---------------------------------------------------------------- race_allocs: allocation records (int64)
AR_BASE = 0
AR_SIZE = 1  # size << 8 | size class
AR_ALLOC = 2  # goroutine << 40 | (stack value & STACK_BITS)
AR_FREE = 3  # the same for the free (0 while allocated)
AR_NSLOTS = 4

# ---------------------------------------------------------------- race_reports: the queue of races found (int64)
RR_ADDR = 0
RR_KIND = 1  # the access: KIND_READ, KIND_WRITE or KIND_FREE
RR_GOID = 2
RR_STACK = 3
RR_PREV_KIND = 4
RR_PREV_GOID = 5  # 0: unknown
RR_PREV_STACK = 6  # 0: not in the history any more
RR_PREV_SLOT = 7
RR_BASE = 8  # the heap block (0 for a global), its size and size class
RR_SIZE = 9
RR_SIZECLASS = 10
RR_ALLOC = 11  # the block's AR_ALLOC, AR_FREE (0: not recorded)
RR_FREE = 12
RR_GLOBAL = 13  # 1 + the root handle, for a race on a global
RR_SEQ = 14  # races found before this one
RR_NSLOTS = 16

# ---------------------------------------------------------------- race_nodes: compiled call stacks (int64)
# Compiled mutators describe their call stack with goheap.nb.race_func_enter/exit, as the
# code 6g generated under -race called racefuncenter/racefuncexit. Each stack is a node of
# a tree: (parent stack value, function id). SN_HEAD doubles as the head of hash bucket r.
SN_PARENT = 0
SN_FN = 1
SN_NEXT = 2  # next node of the same hash bucket
SN_HEAD = 3
SN_NSLOTS = 4
FN_PYTHON_BASE = 0  # a node with fn 0: "compiled code, entered from Python at the parent stack"

# Stack values, in history rows, reports, allocation records and TS_NODE (all fit in 32 bits):
#   > 0   a Python stack id (the shell's table), = -node < 0 a compiled stack node, 0 unknown;
#   STACK_PENDING: the Python caller fills it in when the compiled call returns.
STACK_PENDING = (1 << 31) - 1
STACK_BITS = (1 << 40) - 1  # a stack value as stored beside a goroutine number

# ---------------------------------------------------------------- race_occ: who held each slot when (int64)
OC_SLOT = 0
OC_BIRTH = 1  # the occupant's first clock value
OC_GOID = 2
OC_NSLOTS = 3

HISTORY_BASE = 32 << 10  # GORACE: "per-goroutine memory access history is 32K * 2**history_size elements"


@dataclass(frozen=True)
class RaceSizes:
    """Capacities of the race tables (GORACE's history_size, and limits of this implementation)."""

    history_size: int = 1
    sync_objects: int = 1 << 16
    read_set_nodes: int = 1 << 20
    alloc_records: int = 1 << 20
    report_queue: int = 1 << 10
    stack_nodes: int = 1 << 16
    occupants: int = 1 << 12

    @property
    def history_len(self) -> int:
        return HISTORY_BASE << self.history_size


FIELDS = (
    "race_h", "race_shadow", "race_meta", "race_gshadow", "race_thr", "race_vc", "race_sync",
    "race_rs", "race_hist", "race_allocs", "race_reports", "race_nodes", "race_occ",
)


def build_race_arrays(sysmem: SysMem, arena_size: int, root_slots: int, sizes: RaceSizes | None) -> dict[str, np.ndarray]:
    """The race arrays of a new heap (placeholders when ``sizes`` is None: race mode off).

    raceinit's MapShadow: the globals' shadow is ready at once; the arena's shadow is only
    reserved here, and mapped by :func:`racemapshadow` as the arena grows.
    """
    if sizes is None:
        return {
            "race_h": np.zeros(RH_NSLOTS_, np.int64),
            "race_shadow": np.zeros(2, np.uint32),
            "race_meta": np.zeros(1, np.int32),
            "race_gshadow": np.zeros(2, np.uint32),
            "race_thr": np.zeros((1, TS_NSLOTS), np.int64),
            "race_vc": np.zeros((1, 1), np.int64),
            "race_sync": np.zeros((1, 1), np.int64),
            "race_rs": np.zeros((1, RS_WIDTH), np.uint32),
            "race_hist": np.zeros((1, HI_NSLOTS), np.int64),
            "race_allocs": np.zeros((1, AR_NSLOTS), np.int64),
            "race_reports": np.zeros((1, RR_NSLOTS), np.int64),
            "race_nodes": np.zeros((1, SN_NSLOTS), np.int64),
            "race_occ": np.zeros((1, OC_NSLOTS), np.int64),
        }
    if not 0 <= sizes.history_size <= 7:
        raise ValueError(f"history_size {sizes.history_size} must be 0..7 (as GORACE's)")
    words = arena_size // 8
    shadow_bytes = words * 8
    meta_bytes = (words * 4 + 4095) & ~4095
    shadow_addr = sysmem.sys_reserve(0, shadow_bytes, "the race shadow")
    meta_addr = sysmem.sys_reserve(0, meta_bytes, "the race meta shadow")

    def meta(shape, dtype):
        return metadata_array(sysmem, shape, dtype)

    hist_len = sizes.history_len
    arrays = {
        "race_h": np.zeros(RH_NSLOTS_, np.int64),
        "race_shadow": array_at(shadow_addr, shadow_bytes, np.uint32),
        "race_meta": array_at(meta_addr, words * 4, np.int32),
        "race_gshadow": meta(2 * root_slots, np.uint32),
        "race_thr": meta((NSLOTS, TS_NSLOTS), np.int64),
        "race_vc": meta((NSLOTS, NSLOTS), np.int64),
        "race_sync": meta((sizes.sync_objects, NSLOTS), np.int64),
        "race_rs": meta((min(sizes.read_set_nodes, MAX_NODE + 1), RS_WIDTH), np.uint32),
        "race_hist": meta((NSLOTS * hist_len, HI_NSLOTS), np.int64),
        "race_allocs": meta((sizes.alloc_records, AR_NSLOTS), np.int64),
        "race_reports": meta((sizes.report_queue, RR_NSLOTS), np.int64),
        "race_nodes": meta((sizes.stack_nodes, SN_NSLOTS), np.int64),
        "race_occ": meta((sizes.occupants, OC_NSLOTS), np.int64),
    }
    rh = arrays["race_h"]
    rh[RH_HIST_LEN] = hist_len
    rh[RH_QHEAD] = -1
    rh[RH_QTAIL] = -1
    rh[RH_RS_NEXT] = 1
    rh[RH_NNODES] = 1
    rh[RH_SHADOW_ADDR] = shadow_addr
    rh[RH_META_ADDR] = meta_addr
    return arrays


@jit
def racemapshadow(rt, p, n):
    """racemapshadow: make the shadow (and meta shadow) of the arena up to p+n ready. False if refused.

    Reserved → Ready, like SysMap, but not charged to Sys: the seed's shadow belongs to
    ThreadSanitizer, outside the Go heap's accounting. The arena grows from its start, so
    the shadow does too: [RH_SHADOW_WORDS, new end) is what is new.
    """
    rh = rt.race_h
    start = rt.h[H_ARENA_START]
    words = (p + n - start) >> 3
    done = rh[RH_SHADOW_WORDS]
    if words <= done:
        return True
    if os_mprotect(rh[RH_SHADOW_ADDR] + done * 8, (words - done) * 8, PROT_READ | PROT_WRITE) != 0:
        return False
    meta_need = (words * 4 + 4095) & ~4095
    meta_done = rh[RH_META_MAPPED]
    if meta_need > meta_done:
        if os_mprotect(rh[RH_META_ADDR] + meta_done, meta_need - meta_done, PROT_READ | PROT_WRITE) != 0:
            return False
        rh[RH_META_MAPPED] = meta_need
    rh[RH_SHADOW_WORDS] = words
    return True


@jit
def forget_memory(addr, nbytes):
    """Ready → Released for metadata: the pages read back as zero (a reset of the detector)."""
    if nbytes > 0:
        os_madvise(addr, nbytes, MADV_DONTNEED)
