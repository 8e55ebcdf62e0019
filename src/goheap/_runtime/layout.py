"""The heap's state as plain arrays, and the names of their slots.

See :mod:`goheap._runtime.malloc` for the overview.

Compiled code cannot hold Python objects, so every structure of the seed (the MHeap
record, the MSpans, the MCentrals, the MCaches, MStats) is a numpy array here, and the
whole heap is one :class:`Runtime` of arrays that every compiled function takes as its
first argument, as Go's functions take ``MHeap *h`` (inside the runtime, as a borrowed
``RuntimeRef``: see the end of this file). A field of a C struct
becomes a named column (``spans[s, SP_NPAGES]`` is ``s->npages``); a pointer to an MSpan
becomes a span id, a row of ``spans``; 0 is nil.

Everything is allocated when a heap is built, sized from that heap's arena, from lazily
paged anonymous memory (:func:`build_runtime`): the seed's change. Nothing here is
created at import time, so any number of heaps coexist.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.extending import infer_getattr, intrinsic, lower_getattr_generic, models, register_model
from numba.core.typing.templates import AttributeTemplate
from numba.experimental import structref

from ._jit import jit_entry
from .constants import MAX_MHEAP_LIST, MAX_SIZE_CLASSES, PAUSE_HISTORY

# ---------------------------------------------------------------- h: MHeap scalars (int64)
H_BASE = 0  # start of the reservation: the lowest bitmap byte; mem[0] is the word here
H_ARENA_START = 1
H_ARENA_USED = 2
H_ARENA_END = 3
H_BITMAP_MAPPED = 4
H_NSPAN = 5  # MSpans ever carved (allspans = FIRST_SPAN .. FIRST_SPAN+nspan-1)
H_NSPANCAP = 6  # capacity of the seed's allspans array, for its Sys accounting
H_PAGE_SHIFT = 7  # the policy's runtime page: 12 (the seed's 4 KB) or more; beside arena_start, read with it
H_NOW = 8
H_GCPERCENT = 9  # -1 = off
H_GCTRACE = 10
H_MEMPROFILE_RATE = 11
H_FASTRAND = 12  # state of fastrand1()
H_NPROC = 13  # collector procs (work.nproc)
H_ERR_ARG = 14  # detail of the last error code (an address or a size)
H_GC_STACK_BYTES = 15  # go_process: each collection runs on a stack segment of this many heap bytes (0 = off)
H_PROF_STACK = 16  # profile stack id charged for the next sampled allocation
H_IN_GC = 17
H_GC_PARFOR_BYTES = 18  # go_process: bytes of each ParFor descriptor allocated by the first collection (0 = off)
H_GC_PARFOR_DONE = 19  # the ParFor descriptors exist
H_NTYPES = 20  # rows of typedesc in use (row 0 is "no type")
H_NTYPEPTRS = 21
H_PROF_ORIGIN = 22  # the runtime function allocating now (PROF_ORIGIN_*), 0 when it is the program
H_NGOROUTINES = 23  # goroutine stacks the seed would scan: one root each, for its roots-array accounting
H_NROOTSLOTS = 24  # high-water mark of rootslots in use
H_SYS_MAPPED = 25  # bytes SysMap'd from compiled code (arena and bitmap)
H_SYSMAP_LIMIT = 26  # -1, or the bytes compiled SysMap may map before it refuses (FailingOS.map_limit)
H_MAX_FINALIZERS = 27  # Limits.finalizers: addfinalizer refuses more (each is a root of every collection)
H_PROF_NSTACKS = 28  # profile buckets the shell has interned (rows 0..n-1; runtime ones come from the top)
H_START_NS = 29  # the clock when the heap was built (runtimeInitTime, for gctrace's @time)
H_CLOCK_VIRTUAL = 30  # 1: nanotime() reads H_NOW; 0: the real-time clock
H_RACE = 31  # race mode: 1 when the heap was built with race=True (raceshadow.py, race.py)
H_MEMORY_LIMIT = 32  # the pacer's soft memory limit in bytes, -1 = none
H_SCAVENGE_RETAIN = 33  # the scavenger's retained-heap rule: heap goal + this %, -1 = off (the seed)
H_SPANMAP_SYS = 34  # bytes of span map in the seed's MHeap record (Sys), of which the memory limit counts only the used part
H_HEAP_MARKED = 35  # heap_alloc at the end of the last collection: what the next goal grows from
H_SCAVENGE_GOAL = 36  # retained heap the scavenger keeps (set at each collection), INT64_MAX = none
H_MAX_MHEAP_LIST = 37  # exact free lists free[1..n-1]: spans under 1 MB (1 << (20 - page shift))
H_MIN_HEAP = 38  # the pacer's heap minimum at the current GOGC (policy min_heap x GOGC/100), 0 = none
H_CLOSED = 39  # 1 once Heap.close() began: goheap.nb's checked functions refuse the runtime (h is Python memory, never unmapped)
H_SETTYPE_PENDING = 40  # settype calls buffered in all caches and not yet flushed (free cancels its block's)
H_M_SEQ = 41  # caches (Ms) allocated so far: the next one's LC_M_SEQ
H_NSLOTS = 48

# ---------------------------------------------------------------- mstats: MStats (int64)
ST_ALLOC = 0
ST_TOTAL_ALLOC = 1
ST_SYS = 2
ST_NLOOKUP = 3
ST_NMALLOC = 4
ST_NFREE = 5
ST_HEAP_ALLOC = 6
ST_HEAP_SYS = 7
ST_HEAP_IDLE = 8
ST_HEAP_INUSE = 9
ST_HEAP_RELEASED = 10
ST_HEAP_OBJECTS = 11
ST_STACKS_INUSE = 12
ST_STACKS_SYS = 13
ST_MSPAN_INUSE = 14
ST_MSPAN_SYS = 15
ST_MCACHE_INUSE = 16
ST_MCACHE_SYS = 17
ST_BUCKHASH_SYS = 18
ST_NEXT_GC = 19
ST_LAST_GC = 20
ST_PAUSE_TOTAL_NS = 21
ST_NUMGC = 22
ST_ENABLEGC = 23
ST_DEBUGGC = 24
ST_NSLOTS = 25

BY_SIZE_SIZE = 0
BY_SIZE_NMALLOC = 1
BY_SIZE_NFREE = 2

# ---------------------------------------------------------------- spans: MSpan rows (int64)
SP_NEXT = 0
SP_PREV = 1
SP_START = 2  # page number: address >> PAGE_SHIFT
SP_NPAGES = 3
SP_FREELIST = 4  # address of the first free object, linked through word 0
SP_REF = 5
SP_SIZECLASS = 6
SP_ELEMSIZE = 7
SP_STATE = 8
SP_UNUSEDSINCE = 9
SP_NPRELEASED = 10
SP_LIMIT = 11
SP_TYPES_COMPRESSION = 12
SP_TYPES_DATA = 13
SP_FIXLINK = 14  # spanalloc free-list link (the seed reuses the first word of a dead MSpan)
SP_NFIELDS = 16

# List heads are span rows too (state MSPAN_LIST_HEAD), as in the seed.
FREE_HEAD0 = 1  # free[n] is row FREE_HEAD0 + n, n = 0..255 (free[0] unused)
LARGE_HEAD = FREE_HEAD0 + MAX_MHEAP_LIST
NONEMPTY_HEAD0 = LARGE_HEAD + 1  # mcentral[c].nonempty
EMPTY_HEAD0 = NONEMPTY_HEAD0 + MAX_SIZE_CLASSES  # mcentral[c].empty (room for any policy's classes)
FIRST_SPAN = EMPTY_HEAD0 + MAX_SIZE_CLASSES  # first row handed out by the span FixAlloc

# ---------------------------------------------------------------- fixalloc: FixAlloc records (int64)
FA_SPAN = 0  # spanalloc: hands out span rows
FA_CACHE = 1  # cachealloc: hands out MCache rows
FA_SIZE = 0
FA_LIST = 1  # first free row + 1 (0 = empty)
FA_NCHUNK = 2
FA_INUSE = 3
FA_SYS = 4
FA_NEXT = 5  # next never-used row
FA_CAP = 6  # number of rows
FA_NSLOTS = 8

# ---------------------------------------------------------------- caches: MCache rows
L_LIST = 0  # address of the first free object
L_NLIST = 1
L_NLISTMIN = 2

LC_SIZE = 0
LC_LOCAL_CACHEALLOC = 1
LC_LOCAL_OBJECTS = 2
LC_LOCAL_ALLOC = 3
LC_LOCAL_TOTAL_ALLOC = 4
LC_LOCAL_NMALLOC = 5
LC_LOCAL_NFREE = 6
LC_LOCAL_NLOOKUP = 7
LC_NEXT_SAMPLE = 8
LC_INUSE = 9
LC_FREE_NEXT = 10  # cachealloc free-list link
LC_SETTYPE_N = 11  # words used in this cache's settype buffer
LC_SHADOW_SP = 12  # depth of this thread's shadow stack
LC_ALLOC_PATH = 13  # PATH_* bits: the paths this thread's allocations took since it was last cleared
LC_FLUSH_BYTES = 14  # settype_flush's last MTypes_Bytes array it added a type to (its frame keeps it)
LC_FLUSH_NEW = 15  # settype_flush's last new type array (its mallocgc's frame keeps it)
LC_M_SEQ = 16  # the cache's place in the seed's allm list: the higher, the newer its M
LC_NSLOTS = 18

# The paths an allocation can take below mallocgc's fast one (what its C frames wrote
# on the goroutine stack depends on them: goheap.workloads.gostack emulates those frames).
PATH_REFILL = 1  # MCache_Alloc's list was empty: MCentral_AllocList
PATH_GROW = 2  # MCentral_Grow: a span from the heap
PATH_MEMCLR = 4  # MCache_Alloc cleared a dirty block
PATH_PROFILE = 8  # the allocation was sampled (MProf_Malloc)
PATH_SETTYPE_FLUSH = 16  # settype found its buffer full
PATH_LARGE = 32  # a large block, straight from MHeap_Alloc

SETTYPE_BUF_LEN = 1024  # the seed's per-M settype buffer: 512 (address, type) pairs

# ---------------------------------------------------------------- typedesc: registered types
TD_SIZE = 0  # bytes of one element
TD_PTR_START = 1  # first of its pointer offsets in typeptrs
TD_NPTRS = 2
TD_NSLOTS = 4
TYPE_TAG_BITS = 3  # a type word is (type id << 3) | TypeInfo tag, like a Type* with a tag

# ---------------------------------------------------------------- error codes of compiled entry points
# Compiled functions that hand out addresses return one of these (all negative) on failure,
# with the faulting address or size in h[H_ERR_ARG]; the Python shell turns them into exceptions.
E_OUT_OF_MEMORY = -1
E_NOT_IN_HEAP = -2
E_NOT_ALLOCATED = -3  # in the arena but not in an in-use span
E_INTERIOR = -4
E_DOUBLE_FREE = -5
E_BAD_SIZE = -6
E_TAIL = -7  # in the tail waste of a small-object span
E_CORRUPT = -8
E_NO_CACHE = -9
E_DEADLOCK = -10
E_OUTSIDE_BLOCK = -11  # an access past the end (or before the start) of its block
E_UNALIGNED = -12  # a word access at an address that is not a multiple of 8
E_STACK_FULL = -13  # the thread's shadow stack has no free slot


class RuntimeArrays(NamedTuple):
    """One heap: every array the compiled runtime reads or writes (the Python shell's view)."""

    mem: np.ndarray  # int64 words of the reservation: bitmap (low) then arena
    mem8: np.ndarray  # the same memory as bytes
    h: np.ndarray  # int64[H_NSLOTS]
    mstats: np.ndarray  # int64[ST_NSLOTS]
    by_size: np.ndarray  # int64[nclasses, 3] (61 classes for the seed's table; see goheap.policy)
    pause_ns: np.ndarray  # int64[256]
    spans: np.ndarray  # int64[nrows, SP_NFIELDS]
    spanmap: np.ndarray  # int32[arena pages]: page -> span row, 0 = nil
    fixalloc: np.ndarray  # int64[2, FA_NSLOTS]
    central_nfree: np.ndarray  # int64[nclasses]
    cache_list: np.ndarray  # int64[ncaches, nclasses, 3]
    cache_local: np.ndarray  # int64[ncaches, LC_NSLOTS]
    cache_by_size: np.ndarray  # int64[ncaches, nclasses, 2]: nmalloc, nfree
    class_to_size: np.ndarray  # int64[nclasses]: its length is the heap's NumSizeClasses
    class_to_allocnpages: np.ndarray  # int64[nclasses]
    class_to_transfercount: np.ndarray  # int64[nclasses]
    size_to_class8: np.ndarray  # int64[129]
    size_to_class128: np.ndarray  # int64[249]
    scratch: np.ndarray  # int64[8]: a timespec and other scratch words
    gcstats: np.ndarray  # int64[GS_NSLOTS]: collector bookkeeping (see gc/)
    workbuf: np.ndarray  # int64[nbufs, WB_NSLOTS]: the mark phase's Workbufs (row 0 is nil)
    gcroots: np.ndarray  # int64[n, GR_NSLOTS]: this collection's roots (the seed's work.roots)
    gcproc: np.ndarray  # int64[MAX_GCPROC, GP_NSLOTS]: each collector proc's scan and wait state
    ptrbuf: np.ndarray  # int64[MAX_GCPROC, 64, PT_NSLOTS]: each proc's PtrTarget/BitTarget staging
    parfor: np.ndarray  # int64[2, PF_NSLOTS + MAX_GCPROC * PFT_NSLOTS]: markfor and sweepfor
    roots: np.ndarray  # int64[n, RG_NSLOTS]: registered global regions
    rootptrs: np.ndarray  # int64[n]: pointer word offsets of the regions scanned precisely
    finq: np.ndarray  # int64[n]: objects whose finalizers are ready to run (FinBlock contents)
    fintab: np.ndarray  # int64[17, FT_NSLOTS]: the finalizer table's shards (arrays in the heap)
    gctrace_log: np.ndarray  # int64[n, TR_NSLOTS]: one row per collection, for the Python shell to print
    prof: np.ndarray  # int64[n, PB_NSLOTS]: memory-profile buckets
    profaddr: np.ndarray  # int32[arena words]: bucket + 1 of each sampled block, by heap word
    settype_buf: np.ndarray  # int64[ncaches, SETTYPE_BUF_LEN]: (address, type word) pairs per cache
    typedesc: np.ndarray  # int64[ntypes, TD_NSLOTS]: registered types
    typeptrs: np.ndarray  # int64[n]: pointer word offsets of every type, concatenated
    rootslots: np.ndarray  # int64[n]: explicit root handles (a pointer each, 0 = empty)
    shadow: np.ndarray  # int64[ncaches, depth]: one shadow stack per thread, scanned conservatively
    # race mode (raceshadow.py names their slots; one-element placeholders when it is off)
    race_h: np.ndarray  # int64[RH_NSLOTS_]: the detector's scalars
    race_shadow: np.ndarray  # uint32[2 * arena words]: W, R epochs of each heap word, mapped as the arena grows
    race_meta: np.ndarray  # int32[arena words]: 1 + allocation record, at each block's first word
    race_gshadow: np.ndarray  # uint32[2 * root slots]: the globals' (root handles') shadow
    race_thr: np.ndarray  # int64[256, TS_NSLOTS]: thread slots
    race_vc: np.ndarray  # int64[256, 256]: each slot's vector clock
    race_sync: np.ndarray  # int64[n, 256]: vector clocks of sync objects (mutexes, channels, ...)
    race_rs: np.ndarray  # uint32[n, RS_WIDTH]: read sets of read-shared words
    race_hist: np.ndarray  # int64[256 * history length, HI_NSLOTS]: each slot's recent accesses
    race_allocs: np.ndarray  # int64[n, AR_NSLOTS]: who allocated and freed each block (a ring)
    race_reports: np.ndarray  # int64[n, RR_NSLOTS]: races found, for the shell to print
    race_nodes: np.ndarray  # int64[n, SN_NSLOTS]: compiled call stacks (racefuncenter)
    race_occ: np.ndarray  # int64[n, OC_NSLOTS]: which goroutine held a slot from which clock
    code: np.ndarray  # int64[units.N_UNITS]: machine-code address of each unit the heap loaded, 0 if not (units.py)


# ---------------------------------------------------------------- gcstats slots
GS_NROOTS = 0  # live rows of `roots` (registered regions)
GS_NFINQ = 1  # finalizers queued (entries of finq)
GS_NFIN = 2  # objects in the finalizer table
GS_NFINBLOCKS = 3  # FinBlocks ever allocated (allfin)
GS_WORKBUF_FULL = 4  # head of work.full (a workbuf row, 0 = empty)
GS_WORKBUF_CARVED = 5  # Workbufs carved from 1 MB chunks so far (the rows in use)
GS_ROOTS_CAP = 6
GS_BUFFERLIST = 7  # BufferLists SysAlloc'd so far
GS_T0 = 8
GS_T1 = 9
GS_T2 = 10
GS_T3 = 11
GS_T4 = 12
GS_HEAP0 = 13
GS_HEAP1 = 14
GS_OBJ0 = 15
GS_OBJ1 = 16
GS_NHANDOFF = 17
GS_NHANDOFFCNT = 18
GS_NSTEAL = 19
GS_NSTEALCNT = 20
GS_NPROCYIELD = 21
GS_NOSYIELD = 22
GS_NSLEEP = 23
GS_WORKBUF_EMPTY = 24  # head of work.empty (a workbuf row, 0 = empty)
GS_MARKED = 25  # objects marked in the last cycle
GS_SCANNED_BYTES = 26
GS_FREED = 27
GS_PROF_NBUCKET = 28
GS_NTRACE = 29  # rows written to gctrace_log (it wraps)
GS_NTYPEDSPANS = 30
GS_NGCROOTS = 31  # rows of gcroots built by the last addroots
GS_NWAIT = 32  # work.nwait: procs waiting in getfull
GS_NPROC = 33  # work.nproc of the running collection
GS_BUFFERLIST_FREE = 34  # BufferLists on the free list
GS_ERROR = 35  # an internal limit was hit during the last collection (an E_* code), 0 if none
GS_PROF_NDERIVED = 36  # runtime-origin profile buckets taken from the top of the table
GS_NSLOTS = 40

# ---------------------------------------------------------------- gctrace_log columns
TR_NUMGC = 0
TR_NPROC = 1
TR_MARK_NS = 2
TR_SWEEP_NS = 3
TR_OTHER_NS = 4
TR_HEAP0 = 5
TR_HEAP1 = 6
TR_OBJ0 = 7
TR_OBJ1 = 8
TR_NMALLOC = 9
TR_NFREE = 10
TR_NHANDOFF = 11
TR_NHANDOFFCNT = 12
TR_NSTEAL = 13
TR_NSTEALCNT = 14
TR_NPROCYIELD = 15
TR_NOSYIELD = 16
TR_NSLEEP = 17
TR_FORCED = 18
TR_PAUSE_NS = 19
TR_START_NS = 20  # the clock when the collection started
TR_GOAL = 21  # next_gc when it started: the heap goal this collection was paced for
TR_PAUSE_TOTAL_NS = 22  # PauseTotalNs after it
TR_NEXT_GC = 23  # the heap goal the collection set (the pacer's; heap1 x (1 + GOGC/100) in the seed)
TR_HEAP_SYS = 24  # HeapSys when it ended
TR_NSLOTS = 25

# ---------------------------------------------------------------- roots: registered global regions
RG_ADDR = 0
RG_NBYTES = 1
RG_KIND = 2  # ROOT_CONSERVATIVE or ROOT_PRECISE; ROOT_NONE for a removed region
RG_PTR_START = 3  # ROOT_PRECISE: first of its pointer word offsets in rootptrs
RG_NPTRS = 4
RG_NSLOTS = 5
ROOT_NONE = 0
ROOT_CONSERVATIVE = 1  # scan every word of the region
ROOT_PRECISE = 2  # scan only the words its pointer bitmap names

# ---------------------------------------------------------------- gcroots: one collection's roots, in the seed's order
GR_KIND = 0
GR_A = 1
GR_B = 2
GR_NSLOTS = 3
RK_HANDLES = 1  # the explicit root handles (rootslots[0:a]): the seed's data segment
RK_REGION = 2  # registered region row a: the seed's bss
RK_SPANTYPES = 3  # the word &span.types.data of span a
RK_SHADOW = 4  # the shadow stack of cache a: a goroutine stack
RK_BLOCK = 5  # the contents of the heap block [a, a+b) (an object with a finalizer)
RK_FINBLOCK = 6  # FinBlock a: the arguments of queued finalizers

# ---------------------------------------------------------------- workbuf: Workbuf rows (mgc0.c)
WORKBUF_NOBJ = 339  # Obj entries in one 8 KB Workbuf
WB_NEXT = 0  # lock-free stack link (a row, 0 = end)
WB_NOBJ = 1
WB_OBJ = 2  # Obj i is (p, n, ti) at WB_OBJ + 3*i
WB_NSLOTS = WB_OBJ + 3 * WORKBUF_NOBJ

# ---------------------------------------------------------------- gcproc: one collector proc (an M in gchelper)
GP_STATE = 0
GP_CLOCK = 1  # virtual ns of the simulated interleaving (nproc > 1)
GP_FASTRAND = 2  # this M's fastrand state
GP_WBUF = 3  # current Workbuf row, 0 = nil
GP_NOBJ = 4  # Objs in it
GP_NPTR = 5  # PtrTargets staged
GP_KEEPWORKING = 6
GP_TRY = 7  # iteration of getfull's wait loop
GP_TID = 8  # thread index in the running parfor
GP_NHANDOFF = 9  # m->gcstats, folded in by cachestats
GP_NHANDOFFCNT = 10
GP_NPROCYIELD = 11
GP_NOSYIELD = 12
GP_NSLEEP = 13
GP_NSLOTS = 16

PTRBUF_LEN = 64  # IntermediateBufferCapacity
PT_P = 0  # PtrTarget.p
PT_BT_P = 1  # BitTarget.p
PT_BT_BITP = 2  # BitTarget.bitp (index of the bitmap word in mem)
PT_BT_SHIFT = 3
PT_NSLOTS = 4

# ---------------------------------------------------------------- parfor: ParFor descriptors (parfor.c)
PARFOR_MARK = 0
PARFOR_SWEEP = 1
PF_NTHR = 0
PF_CNT = 1
PF_WAIT = 2
PF_THRSEQ = 3
PF_DONE = 4
PF_NSTEAL = 5
PF_NSTEALCNT = 6
PF_NPROCYIELD = 7
PF_NOSYIELD = 8
PF_NSLEEP = 9
PF_NSLOTS = 10
PFT_BEGIN = 0  # the packed pos of the seed, as two fields
PFT_END = 1
PFT_STEALING = 2  # out of local work, in the steal loop
PFT_TRY = 3
PFT_IDLE = 4
PFT_NSTEAL = 5
PFT_NSTEALCNT = 6
PFT_NPROCYIELD = 7
PFT_NOSYIELD = 8
PFT_NSLEEP = 9
PFT_NSLOTS = 10

# ---------------------------------------------------------------- fintab: finalizer table shards (mfinal.c)
FINTAB_SHARDS = 17  # TABSZ
FT_KEY = 0  # heap address of the key array (max words, FlagNoPointers)
FT_VAL = 1  # heap address of the value array (max Fin records of 16 bytes)
FT_NKEY = 2
FT_NDEAD = 3
FT_MAX = 4
FT_NSLOTS = 5
FINBLOCK_CAP = (4096 - 48) // 24 + 1  # 169 Finalizer records in one page-sized FinBlock

# ---------------------------------------------------------------- prof: memory-profile buckets
PB_ALLOCS = 0
PB_FREES = 1
PB_ALLOC_BYTES = 2
PB_FREE_BYTES = 3
PB_RECENT_ALLOCS = 4
PB_RECENT_FREES = 5
PB_RECENT_ALLOC_BYTES = 6
PB_RECENT_FREE_BYTES = 7
PB_PARENT = 8  # a runtime-origin bucket: 1 + the bucket of the program stack it was called from
PB_ORIGIN = 9  # a runtime-origin bucket: its PROF_ORIGIN_*
PB_DERIVED = 10  # PB_DERIVED + origin - 1: this stack's runtime-origin bucket for that origin, 0 if none
PB_NSLOTS = PB_DERIVED + 4

# The runtime's own allocations that the profile charges to runtime frames (called from the
# program's stack in H_PROF_STACK): goheap.report.pprof.RUNTIME_ORIGIN_FRAMES names them.
PROF_ORIGIN_SETTYPE = 1  # settype_flush of a full settype buffer (runtime.new -> settype)
PROF_ORIGIN_GC_SETTYPE = 2  # settype_flush at the start of a collection
PROF_ORIGIN_PARFOR = 3  # the collector's ParFor descriptors (first collection)
PROF_ORIGIN_FINALIZER = 4  # the finalizer table (addfinalizer)

PAUSE_NS_LEN = PAUSE_HISTORY


# ---------------------------------------------------------------- the compiled view: one pointer
#
# Compiled functions receive the arrays as a StructRef: one pointer to pass, fields loaded
# on use. (A tuple of arrays would be copied into every call, flattened: hundreds of words.)
# Interpreted (NUMBA_DISABLE_JIT), the named tuple itself serves, with the same field names.


@structref.register
class RuntimeType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class Runtime(structref.StructRefProxy):
    """The compiled handle on a heap's arrays; build it with :func:`as_runtime`."""


structref.define_proxy(Runtime, RuntimeType, list(RuntimeArrays._fields))


@structref.register
class RaceRuntimeType(RuntimeType):
    """The Runtime of a heap in race mode: same fields, another type.

    goheap.nb's loads and stores compile their race checks only for this type, so a
    mutator compiled for an ordinary heap carries none (as a Go binary built without
    -race has no raceread calls); one compiled for a race-mode heap checks every access.
    """


class RaceRuntime(structref.StructRefProxy):
    """The compiled handle on a race-mode heap's arrays."""


structref.define_proxy(RaceRuntime, RaceRuntimeType, list(RuntimeArrays._fields))

# dtype and dimensions of every field, so the compiled type is known before any heap exists
_FIELD_KINDS = {
    "mem8": (np.uint8, 1), "spanmap": (np.int32, 1), "profaddr": (np.int32, 1),
    "race_shadow": (np.uint32, 1), "race_meta": (np.int32, 1), "race_gshadow": (np.uint32, 1),
    "race_rs": (np.uint32, 2),
}
_FIELD_NDIM = {
    "by_size": 2, "spans": 2, "fixalloc": 2, "cache_list": 3, "cache_local": 2, "cache_by_size": 3,
    "workbuf": 2, "gcroots": 2, "gcproc": 2, "ptrbuf": 3, "parfor": 2, "roots": 2, "fintab": 2,
    "gctrace_log": 2, "prof": 2, "settype_buf": 2, "typedesc": 2, "shadow": 2,
    "race_thr": 2, "race_vc": 2, "race_sync": 2, "race_hist": 2, "race_allocs": 2, "race_reports": 2, "race_nodes": 2, "race_occ": 2,
}


def _field_type(name):
    dtype, ndim = _FIELD_KINDS.get(name, (np.int64, _FIELD_NDIM.get(name, 1)))
    return types.Array(numba.from_dtype(np.dtype(dtype)), ndim, "C")


RUNTIME_TYPE = RuntimeType([(name, _field_type(name)) for name in RuntimeArrays._fields])
RACE_RUNTIME_TYPE = RaceRuntimeType([(name, _field_type(name)) for name in RuntimeArrays._fields])


def check_arrays(arrays: RuntimeArrays) -> None:
    """Every array has the dtype, rank and layout RUNTIME_TYPE expects."""
    for name, typ in RUNTIME_TYPE.field_dict.items():
        a = getattr(arrays, name)
        if numba.typeof(a) != typ:
            raise TypeError(f"runtime array {name} is {numba.typeof(a)}, want {typ}")


def as_runtime(arrays: RuntimeArrays, race: bool = False):
    """The Runtime (RaceRuntime in race mode) over ``arrays``: what ``Heap.runtime`` hands to compiled mutators."""
    if numba.config.DISABLE_JIT:
        return arrays
    return _new_runtime(RACE_RUNTIME_TYPE if race else RUNTIME_TYPE, *arrays)


@jit_entry
def _new_runtime(struct_type, mem, mem8, h, mstats, by_size, pause_ns, spans, spanmap, fixalloc,
    central_nfree, cache_list, cache_local, cache_by_size, class_to_size, class_to_allocnpages,
    class_to_transfercount, size_to_class8, size_to_class128, scratch, gcstats, workbuf, gcroots,
    gcproc, ptrbuf, parfor, roots, rootptrs, finq, fintab, gctrace_log, prof, profaddr, settype_buf,
    typedesc, typeptrs, rootslots, shadow, race_h, race_shadow, race_meta, race_gshadow, race_thr,
    race_vc, race_sync, race_rs, race_hist, race_allocs, race_reports, race_nodes, race_occ, code):
    """``Runtime(*arrays)`` (or ``RaceRuntime``: ``struct_type``), compiled once and cached:
    the proxies' own constructors are not cacheable, and compiling one anew cost every
    process about half a second."""
    rt = structref.new(struct_type)
    rt.mem = mem
    rt.mem8 = mem8
    rt.h = h
    rt.mstats = mstats
    rt.by_size = by_size
    rt.pause_ns = pause_ns
    rt.spans = spans
    rt.spanmap = spanmap
    rt.fixalloc = fixalloc
    rt.central_nfree = central_nfree
    rt.cache_list = cache_list
    rt.cache_local = cache_local
    rt.cache_by_size = cache_by_size
    rt.class_to_size = class_to_size
    rt.class_to_allocnpages = class_to_allocnpages
    rt.class_to_transfercount = class_to_transfercount
    rt.size_to_class8 = size_to_class8
    rt.size_to_class128 = size_to_class128
    rt.scratch = scratch
    rt.gcstats = gcstats
    rt.workbuf = workbuf
    rt.gcroots = gcroots
    rt.gcproc = gcproc
    rt.ptrbuf = ptrbuf
    rt.parfor = parfor
    rt.roots = roots
    rt.rootptrs = rootptrs
    rt.finq = finq
    rt.fintab = fintab
    rt.gctrace_log = gctrace_log
    rt.prof = prof
    rt.profaddr = profaddr
    rt.settype_buf = settype_buf
    rt.typedesc = typedesc
    rt.typeptrs = typeptrs
    rt.rootslots = rootslots
    rt.shadow = shadow
    rt.race_h = race_h
    rt.race_shadow = race_shadow
    rt.race_meta = race_meta
    rt.race_gshadow = race_gshadow
    rt.race_thr = race_thr
    rt.race_vc = race_vc
    rt.race_sync = race_sync
    rt.race_rs = race_rs
    rt.race_hist = race_hist
    rt.race_allocs = race_allocs
    rt.race_reports = race_reports
    rt.race_nodes = race_nodes
    rt.race_occ = race_occ
    rt.code = code
    return rt


_constructor = getattr(_new_runtime, "py_func", getattr(_new_runtime, "__wrapped__", _new_runtime))
if tuple(_constructor.__code__.co_varnames[1 : 1 + len(RuntimeArrays._fields)]) != RuntimeArrays._fields:
    raise AssertionError("layout._new_runtime must take RuntimeArrays' fields, in order")


# ---------------------------------------------------------------- inside the runtime: a borrowed pointer
#
# Every use of a StructRef in compiled code (passing it on, reading a field) updates a
# reference count atomically, and so does every use of an array read from it; measured, that
# was half the cost of a small allocation. Inside the runtime ``rt`` is therefore a
# RuntimeRef: the bare address of a Runtime's fields, whose arrays come out carrying no
# reference count. It is valid only while the Runtime it was taken from is alive; the Heap
# keeps that one alive until close(). Entry points make one from what they are given:
# ``runtime_ref(rt)`` from a Runtime, ``handle.runtime_at(handle)`` from an integer handle.
# Interpreted, the named tuple of arrays serves as both.


class RuntimeRefType(types.Type):
    def __init__(self):
        super().__init__(name="RuntimeRef")


RUNTIME_REF_TYPE = RuntimeRefType()


@register_model(RuntimeRefType)
class _RuntimeRefModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.IntType(8).as_pointer())


@infer_getattr
class _RuntimeRefAttributes(AttributeTemplate):
    key = RUNTIME_REF_TYPE

    def generic_resolve(self, typ, attr):
        return RUNTIME_TYPE.field_dict.get(attr)


def runtime_fields(context, builder, address):
    """The Runtime's field struct at ``address`` (an i8*), for reading fields in generated code."""
    payload = RUNTIME_TYPE.get_data_type()
    struct_ptr_type = context.data_model_manager[payload].get_value_type().as_pointer()
    return cgutils.create_struct_proxy(payload)(context, builder, ref=builder.bitcast(address, struct_ptr_type))


def _load_invariant(builder, ptr):
    """The value at ptr, loaded word by word as invariant.

    A Runtime's arrays are set once, when it is built. Saying so to LLVM lets it keep an
    array's data pointer, shape and strides in registers across the stores a function
    makes, which it must otherwise assume could have changed them: without it, every
    access after a store reloads them. (Whole-struct loads lose the mark when LLVM splits
    them, hence one load per word.)
    """
    typ = ptr.type.pointee
    if not isinstance(typ, (ir.BaseStructType, ir.ArrayType)):
        load = builder.load(ptr)
        load.set_metadata("invariant.load", builder.module.add_metadata([]))
        return load
    value = ir.Constant(typ, ir.Undefined)
    members = typ.elements if isinstance(typ, ir.BaseStructType) else [typ.element] * typ.count
    for i in range(len(members)):
        value = builder.insert_value(value, _load_invariant(builder, cgutils.gep_inbounds(builder, ptr, 0, i)), i)
    return value


@lower_getattr_generic(RuntimeRefType)
def _runtime_ref_getattr(context, builder, typ, value, attr):
    fieldtype = RUNTIME_TYPE.field_dict[attr]
    field = _load_invariant(builder, runtime_fields(context, builder, value)._get_ptr_by_name(attr))
    array = context.make_array(fieldtype)(context, builder, value=field)
    array.meminfo = cgutils.get_null_value(array.meminfo.type)  # borrowed: no reference counting
    return array._getvalue()


if numba.config.DISABLE_JIT:

    def runtime_ref(rt):
        return rt

    def borrowed(array):
        return array

else:

    @intrinsic
    def runtime_ref(typingctx, rt):
        """The RuntimeRef of a Runtime (or of a RuntimeRef: itself)."""
        if isinstance(rt, RuntimeRefType):
            return RUNTIME_REF_TYPE(rt), lambda context, builder, sig, args: args[0]
        if not isinstance(rt, RuntimeType):
            return None

        def codegen(context, builder, sig, args):
            meminfo = cgutils.create_struct_proxy(sig.args[0])(context, builder, value=args[0]).meminfo
            return builder.bitcast(context.nrt.meminfo_data(builder, meminfo), ir.IntType(8).as_pointer())

        return RUNTIME_REF_TYPE(rt), codegen

    @intrinsic
    def borrowed(typingctx, array):
        """The same array, borrowed: passed on without reference counting, like a RuntimeRef's arrays.

        For an array a compiled entry point was given, before it hands the array down a
        deep or recursive call chain (each call would otherwise count a reference in and
        out). Valid while the entry point runs: its caller holds the array.
        """
        if not isinstance(array, types.Array):
            return None

        def codegen(context, builder, sig, args):
            value = context.make_array(sig.args[0])(context, builder, value=args[0])
            value.meminfo = cgutils.get_null_value(value.meminfo.type)
            return value._getvalue()

        return array(array), codegen
