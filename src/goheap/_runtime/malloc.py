'''The overview: how goheap allocates and collects memory, as the Go runtime did in February 2013.

goheap re-implements the memory allocator and garbage collector of the Go runtime at
commit 8a6ff3ab ("runtime: allocate heap metadata at run time", 15 Feb 2013; "the seed"),
over real virtual memory, in Python with numba. Every other module of ``_runtime`` points
back here. The 2013 files are named beside each module: ``mheap.py`` is ``mheap.c``.

Glossary
========

page
    A *runtime* page of 4 KB (``PAGE_SIZE``; a policy may choose 8 KB or more, see
    "Policies"). An *OS page* is also 4 KB on amd64 Linux, but the two are different
    ideas: the runtime counts its pages; the OS pages memory in lazily.
span (MSpan)
    A run of contiguous runtime pages, either free (in the page heap) or in use: holding one
    large object, or carved into objects of one size class.
size class
    One of 60 object sizes from 8 B to 32 KB (class 0 means "large"), computed by
    ``sizeclasses.py`` exactly as msize.c computes them (or a policy's table).
FixAlloc
    A free-list allocator of fixed-size records (MSpan, MCache): ``fixalloc.py``.
MHeap
    The page heap: free spans on 256 lists, the page -> span map, the arena: ``mheap.py``.
MCentral
    One per size class: the spans of that class with free objects: ``mcentral.py``.
MCache
    One per thread: small free lists of each class, and the thread's stat deltas: ``mcache.py``.
MStats
    The statistics behind ``runtime.MemStats``: ``stats.py``.
heap bitmap
    Four bits per heap word just below the arena (allocated, no-pointers/boundary, marked,
    special): ``bitmap.py``.

Allocating a small object
=========================
1. Round the size up to its class and pop an object from the thread's MCache list for the
   class. No lock, no shared state: this is the common case.
2. If the list is empty, take a batch (the class's transfer count, up to 32 objects) from
   the MCentral. The batch amortises the central lock.
3. If the MCentral has no span with free objects, take a span from the MHeap and carve it
   into an address-ordered free list. This amortises the heap lock over a span.
4. If the MHeap has no free span large enough, grow the arena by at least 1 MB: map more
   of the reservation and of the bitmap. This amortises the system call.

Memory is zeroed lazily: a free object with a non-zero second word, or a free span with a
non-zero first word, is "dirty" and is cleared when handed out; fresh OS memory is clean.

A large object (> 32 KB) is a span of its own, taken from the MHeap directly.

Freeing and sweeping walk the same path upwards: an object goes back to the MCache
(explicit free) or straight to the MCentral (sweep); a span with no objects in use goes
back to the MHeap, which coalesces it with free neighbours; the scavenger returns spans
idle for five minutes to the OS with madvise.

Collecting
==========
See :mod:`goheap._runtime.gc`: a stop-the-world mark-sweep over the heap bitmap, with
conservative scanning of roots and untyped objects and precise scanning of typed ones,
paced by GOGC from the lagging heap_alloc.

Race mode
=========
A heap built with ``race=True`` also runs the seed's race.c hooks: racemapshadow maps
shadow for each piece of arena MHeap_SysAlloc commits, racemalloc (end of mallocgc)
gives a new block a fresh history, racefree (free) checks the free as a write and marks
the block freed, and goheap.nb's loads and stores call raceread/racewrite first, as 6g's
-race code does. The detector behind them is goheap's own (Departure 15):
``raceshadow.py`` lays out its memory, ``race.py`` decides what happens before what,
``goheap/race.py`` prints the reports and provides the synchronisation it understands.
Every hook tests ``h[H_RACE]`` first; compiled mutators test nothing at all unless they
were compiled for a race-mode heap's runtime (a ``RaceRuntime``).

Policies
========
A heap runs under a policy (:class:`goheap.Policy`: ``HeapConfig(policy=)``, ``goheap
run|replay --policy``): its size-class table and page size, its pacer and its
scavenger. The default, ``seed``, is the 2013 runtime's numbers, and with it goheap runs
exactly as the seed does; the presets ``go1.27-classes``, ``modern-pacer`` and
``modern`` put later Go's numbers into the same 2013 code (``goheap policies``). A
policy is data in the heap's state, read where the seed uses its constants; no code
path asks which policy it runs under.

Size classes and page size
    ``mallocinit.build_runtime`` fills ``class_to_size``, ``class_to_allocnpages``,
    ``class_to_transfercount`` and the two ``size_to_class`` lookups from the policy's
    table (``sizeclasses.from_rows``: msize.c's algorithm, Go's table of
    ``gosizeclasses.py``, or rows of its own). The table's length is the heap's
    NumSizeClasses: it sizes ``by_size`` (MemStats.BySize), ``central_nfree`` and each
    MCache's lists and BySize counters, and the loops over classes read it from there.
    Past the largest class the lookups give class 0, so larger requests are large objects.
    ``h[H_PAGE_SHIFT]`` is the page: ``span_base``/``span_bytes`` (mheap.py), the span
    map's index, large objects' rounding, MHeap_Grow's 64 KB rounding, the exact free
    lists under 1 MB (``h[H_MAX_MHEAP_LIST]``: 256 of 4 KB, 128 of 8 KB), the mark's
    and sweep's span lookups, the scavenger, the race detector's block bounds,
    ``check()`` and ``goheap.inspect`` all read it. The heap bitmap (four bits per word)
    does not depend on it. Sys charges the MHeap record and each MCache for the table's
    classes and the page's span map, as sizeof would. Reading the shift from the state
    rather than compiling a constant (kept in the cache line of arena_start, which every
    lookup reads too) left the seed's speed within noise (bench_malloc, bench_gc,
    binary-trees 16, measured side by side), so one build of the runtime serves every
    page size.
Pacer (``pacer.py``)
    At the end of each collection ``heap_goal`` sets next_gc: the seed's heap_alloc x
    (1 + GOGC/100), floored by ``h[H_MIN_HEAP]`` (Go >= 1.5's 4 MB x GOGC/100, also the
    first goal) and lowered to the memory limit's goal (``h[H_MEMORY_LIMIT]``, Go 1.19's
    memoryLimitHeapGoal), which is recomputed after each heap growth too (mheap_grow).
    The formula, its source and what happens past the limit are in ``pacer.py``.
Scavenger
    The seed's rule (spans idle 5 minutes released, a collection forced after 2) runs in
    the Python shell's scavenger tick with the policy's ages. Go 1.19's rule
    (``h[H_SCAVENGE_RETAIN]``): at the end of each collection ``pace_scavenger`` sets
    the retained heap to keep, and free spans are released from the top of the arena
    down to it then, before each heap growth, and at each tick (``mheap_scavenge_top``).

What a preset cannot model is Departure 16.

Heap metadata at run time (the seed's change)
=============================================
The seed moved the 256 MB MHeap record out of the binary's BSS into memory allocated when
the runtime starts. goheap goes one step further in the same direction: *all* metadata of a
heap (span map, span records, caches, bitmap) is allocated when a :class:`goheap.Heap` is
built, sized from that heap's arena, in lazily paged anonymous memory (``layout.py``,
``heap.py``). A heap reserving 128 GB costs a few MB of RSS until used, and any number of
heaps coexist in one process.

Layout of the code
==================
``layout.py`` names every slot of the state arrays; compiled functions take the whole
state as their first argument, as Go's take ``MHeap *h`` (a ``RuntimeRef``: a borrowed
pointer to the heap's ``Runtime`` of arrays, free of reference counting), and a thread's
cache row ``c`` as their second where the seed uses ``m->mcache``. Layers call downward
only: entry -> api -> gc -> malloc -> mcache -> mcentral -> mheap -> pacer, fixalloc, bitmap ->
sysmem (a test enforces it). A few parts are compiled once each as *units*
(``units.py``): the page heap's MHeap_Alloc and MHeap_Free, the collector, its mark phase,
its interleaved procs, the race detector. Other compiled code calls a unit through the heap's table of
code addresses (``rt.code``) instead of carrying its own copy of it, which is what keeps
the first run's compiling short; ``prepare.py`` compiles them, and the entry points, on
every core the first time. ``pacer.py`` holds the heap goal of every policy (the seed's,
Go 1.5's minimum heap, Go 1.19's memory limit) and the scavenger's retained-heap goal;
``goheap.policy`` is the :class:`~goheap.Policy` a heap is built with (see "Policies").
``goenv.py`` reads GOGC as the seed does, in plain Python, so that the command line can
without loading the runtime. ``heap.py`` is the Python shell over it all: ``Heap``, the
allocator's and the accessors' hot paths, assembled from its parts in ``goheap/_shell/``
(``config``: HeapConfig, readgogc, TypeInfo; ``args``: the checks of every number a call
takes; ``roots``: RootSet's handles and regions; ``scope``: handle scopes and Refs;
``lifetime``: close() against other threads, and what outlives it; ``profiling``: stacks,
buckets, heap profiles; ``finalizers``: SetFinalizer and the queue's runner; ``scavenger``:
the clock, the scavenger's rounds, FreeOSMemory). ``goheap.nb`` is the compiled API
(``_jit_api.py``) and its checked twin (``_jit_checked.py``, ``goheap.nb.checked``). Above the shell:
``goheap.workloads`` (the seed runs' programs ported, in a model of the 2013 Go process),
``goheap.trace`` (recorded Go programs: Go 1.3-1.21 allocfreetrace logs and, through the
compiled ``goheap.trace.exectrace``, Go 1.23+ execution traces, imported into trace files
and replayed beside the recorded run), ``goheap.inspect`` and
``goheap.report`` (views, HTML reports, pprof profiles), ``goheap.race``, ``goheap.sweep``
(grids of runs on Dask, their results table, comparison report and ``goheap diff``) and
``goheap.cli``, with what every command shares in ``goheap.command`` (errors, output
checks, GOGC flags), ``goheap.interrupts`` (Ctrl-C and SIGTERM at safe points) and
``goheap.atomicfile`` (every output written whole or not at all); ``goheap.trace.bounded``
reads untrusted files in bounded memory.

Departures
==========
Where goheap differs from the seed on purpose. Anything else that differs is a bug.

1. *One M, the GIL as the lock.* Compiled runtime calls hold the GIL, so every operation is
   atomic with respect to other Python threads; the per-thread caches, batches and stat
   lags are kept exactly, but the locks themselves are not modelled. The shell's own
   tables (roots, finalizers, types) change under one lock per heap, and close() waits
   for the calls other threads are making (``goheap/_shell/lifetime.py``).
2. *Collector procs are interleaved, not parallel.* With nproc > 1 the procs' mark and
   sweep run on one thread as a discrete-event simulation (``gc/gchelper.py``): each
   proc runs the seed's own algorithms (parfor ranges cnt*i/nthr and its steal and
   back-off protocol, the Workbuf full/empty stacks, flushptrbuf's handoff when another
   proc waits, more than 4 Objs are queued and work.full is empty, getfull's wait loop),
   and the proc whose virtual clock is earliest takes the next step; a step's cost comes
   from a fixed cost model, not from measured time. So the handoff/steal/yield counts in
   gctrace are exactly what the seed's code produces for that interleaving, and runs are
   reproducible. Not modelled: a real race (each step is atomic, so CASes never fail);
   the helpers' own M caches (all sweeping is charged to the collecting thread's cache,
   which gives the same totals); the helpers' fastrand seeds include no cputicks()
   (0x49F6428A + proc; proc 0 uses the allocating thread's state, as the collecting M
   does). With nproc = 1 the parfors are plain loops and getfull never waits, so every
   counter stays 0, as in the seed. As in the seed, the mark parfor's own steals and
   yields are not reported.
3. *Metadata records are array rows.* MSpan and MCache records are rows of arrays sized
   from the arena, handed out by the FixAllocs in the seed's order; the span map stores
   32-bit row numbers. MemStats still charge what the seed's structures cost (the 256 MB
   MHeap record, 128 KB FixAlloc chunks, the allspans array, 1 MB Workbuf chunks,
   BufferLists, FinBlocks, the roots array), so MemStats.Sys matches. The Workbuf pool is
   sized from the arena so that it cannot run out.
4. *Types are pointer maps.* A registered type is a size and a list of pointer-word
   offsets, not a compiler-generated GC program; strings, interfaces and maps have no
   special instructions. Objects of such types are scanned precisely; untyped ones
   conservatively, as in the seed. Every queued Obj has type info 0: the type is always
   found through the span's type record, as the seed does for ti = 0.
5. *Roots are explicit.* Python holds addresses as plain ints, which no collector can see;
   roots are the handles (``heap.roots``, in the place of the seed's data segment), the
   registered regions (its bss: user memory scanned conservatively, or precisely with a
   pointer bitmap), and each thread's shadow stack (a goroutine stack, conservative). The
   seed's roots-array Sys accounting counts the roots a Go process would have (data, bss,
   typed spans, ``H_NGOROUTINES`` stacks, finalizer objects, FinBlocks).
6. *Finalizers run in Python* after the collection, on the thread that triggered it
   (collections inside compiled mutators queue them until ``Heap.after_compiled()``),
   instead of on a finalizer goroutine; the seed's rule (a forced GC after each batch,
   newest FinBlock first) is kept. An exception from a finalizer is reported as a
   FinalizerWarning after its batch (the seed's runtime would crash); the heap is intact.
7. *Misuse is an error, not a throw.* Where the seed throws and the process dies (free of
   a block that is not allocated, out of memory, a refused SysMap), goheap returns an
   error code that the shell raises as a :class:`goheap.HeapError`, with nothing changed.
   free() also checks what the seed trusts its runtime callers to get right: interior
   pointers, the tail waste of a span, double frees (through the needs-zeroing marks a
   free leaves behind). The common case costs one bitmap read (see :func:`free`).
8. *Threads end.* The seed's Ms never exit; goheap's threads do, and a thread's MCache is
   given back when it ends (freemcache), its BySize counts folded in first (the seed
   folds them only in cachestats) so that no count is lost.
9. *free() is public.* ``Heap.free`` and ``nb.free`` are the seed's runtime·free, which
   Go code never calls and which never sees a block with a finalizer or a type; goheap's
   removes a block's finalizer and forgets its type (its slot's type record, as sweepspan
   does, and any settype still buffered for it), so that the next block allocated at that
   address inherits neither: an untyped one scanned with a stale pointer map would lose
   the objects it points to. The shell's accessors (``Heap.lookup``, ``load_word``,
   ``store_word``, ``view``, and ``goheap.nb.checked``) accept only addresses inside
   allocated blocks, where the seed's mlookup (and ``nb.lookup``) also finds free slots:
   a store into a free object would rewrite its free-list link. The runtime's own blocks
   (span type arrays, the finalizer table's arrays) are heap blocks too, which no call
   hands out but free and the accessors accept if given their address (a stale pointer
   into a reused slot, say): the seed's C has the same hole.
10. *SysMap maps the bitmap first.* MHeap_SysAlloc maps the bitmap covering the new arena
    pages before the pages themselves (the seed maps them after), so that a refusal of
    either leaves arena_used and Sys equal to what is mapped. No result differs otherwise.
11. *The finalizer table's arrays are FlagNoGC.* Its key and value arrays are heap blocks
    of the seed's sizes, allocated and freed when the seed does, but FlagNoGC instead of
    being kept alive through the runtime's bss; the value arrays stay zero (the functions
    are Python objects). The number of finalizers is bounded by ``Limits.finalizers``
    and the ready queue by ``Limits.finalizer_queue``: an unreachable object that finds
    the queue full keeps its finalizer and is retried at the next collection. Which
    FinBlock holds which queued entry is not tracked: FinBlock root k is entries
    [169k, 169k + 169).
12. *GOGC is read when a Heap is built* (HeapConfig.gcpercent wins over it), not at the
    first collection; the value is parsed exactly as readgogc does.
13. *The rest of a Go process is replayed, not run.* A Go program shares its heap with the
    runtime's and libraries' own blocks (the symbol table, G and M records and their
    stacks, package variables, fmt's printer and buffers). goheap cannot run that C and Go
    code, so the workloads replay those blocks (``goheap.workloads.goprocess``) as the
    oracle (the 2013 toolchain, tests/data/oracle-runs) shows them: ``tools/oracle_trace.py``
    runs each program under gdb and logs every such allocation (size, flags, dogc, the
    type settype gets, the call stack), every explicit free and every block a collection
    sweeps. Derived from that: the blocks and their order, which are freed or garbage, the
    second M (with its own MCache) the program runs on after init, fmt's buffer growth
    for each line printed. Still modelled: the blocks' contents (zero: each is kept alive
    as the trace showed, not through the pointers that really keep it); sizes that depend
    on the build (the symbol table, the GOROOT in time's zoneinfo path) are the oracle
    build's; two choices the real runtime makes at random take their usual outcome (the
    scavenger's M starts at the end of init in most runs; syscall's environment map grows
    when GOGC is set). The runtime's own blocks are allocated by the runtime itself: the
    finalizer table's arrays (for the three os.File finalizers), the span type arrays,
    and, with ``HeapConfig(go_process=True)``, the collector's stack segment (one per
    collection) and ParFor descriptors (at the first).
14. *Goroutine stacks are emulated, not compiled.* The ports keep their roots in frames
    on goheap's per-thread stack (``goheap.workloads.gostack``), dead slots left in place
    as on a real stack. Derived from the oracle binaries: each Go function's frame size
    and the slots it writes, in the order 6g's code writes them (``objdump -d``), with the
    variables escape analysis kept on the stack (GCBench's ``temp`` and ``longLived``
    nodes); the words the runtime's C frames below ``runtime.new`` and
    ``runtime.makeslice`` (mallocgc, its callees, runtime·gc when it collects) write on
    each path an allocation takes, the new block where the code stores it (read off the
    disassembly, checked by running the oracle under gdb with the dead stack poisoned;
    the runtime reports the paths, ``nb.alloc_path``); the words each library call
    (fmt.Printf, time.Now, strconv.Atoi...) writes below its caller (measured the same
    way). Still modelled: those library calls write non-pointers here (really text and
    stack addresses, or pointers to fmt's printer, alive anyway); a C path's words are
    those of its most common variant; a word the C code writes only half of (32 bits) is
    written whole; the stack above main (runtime.main, and what package init left in
    main's frame) is zero; the real runtime picks profile samples from a random seed
    (cputicks), goheap from a fixed one, and the sampled allocations' extra frames differ.
15. *Race mode is goheap's own detector, not ThreadSanitizer.* The seed's race.c hands its
    hooks to the TSan runtime linked into a -race binary; nothing can link TSan under
    Python threads and numba code, so ``race.py`` implements the hooks itself, keeping
    their names and places (racemapshadow in MHeap_SysAlloc, just before the arena pages
    as in Departure 10; racemalloc; racefree; raceread/racewrite; acquire/release). What
    differs: (a) the algorithm is FastTrack (last write epoch, last read epoch or read set,
    per 8-byte word: 8 bytes of shadow, not TSan's four 8-byte cells), so an access is
    checked against the last write and the reads since, not against four remembered
    accesses; (b) one cell per word: TSan records each access's offset and size in the
    word, so two threads writing different bytes of one word race here and not there;
    (c) previous stacks come from a per-goroutine history of the accesses that changed the
    shadow (GORACE history_size sets its length, as it sets TSan's trace), and reports
    are printed by the Python shell (goheap.race), deduplicated by stack pair and address
    as TSan's are; (d) happens-before comes only from goheap.race's Mutex, RWMutex, Chan,
    WaitGroup and Thread (the seed's from the Go runtime's sync, chan and go statements),
    and a collection's stop-the-world is a full barrier, which TSan, blind to the
    uninstrumented collector, does not see; (e) halt_on_error raises RaceError instead of
    exiting with status 66 (``goheap run --race`` exits 66). As with TSan, the shadow is
    not charged to MemStats.Sys, a large block's free is checked over its first 1 KB only,
    and blocks freed by the collector are not marked freed.
16. *A policy changes numbers, not the 2013 design.* Under the non-seed presets goheap is
    the seed's runtime with later Go's tables and pacing rules, not later Go. Not
    modelled: Go >= 1.5's concurrent mark (write barriers, assists, the 25% background
    worker, the trigger set ahead of the goal: goheap stops the world when heap_alloc
    reaches the goal itself) and its GC CPU limiter (past a memory limit goheap keeps a
    64 KB runway instead, see ``pacer.py``); the goal's share for stacks and globals (Go
    1.18; goheap paces the heap alone); Go >= 1.3's tiny allocator (no-pointer objects
    under 16 bytes packed into one block; goheap gives each its own slot), per-P caches
    of whole spans (Go 1.2; goheap keeps the seed's transfer batches), Go 1.14's page
    allocator and Go 1.11's heap arenas (goheap keeps the seed's free lists and one
    reservation); the background scavenger's 1% CPU pacing and 64 KB chunks (goheap
    releases whole free spans, at once, at the points in "Policies"). The memory limit
    counts MemStats.Sys less HeapReleased, with only the part of the seed's span map
    that covers the arena in use (the seed SysAllocs all of it; Go has mapped it lazily
    since 1.2). MemStats.BySize has an entry per class of the policy's table (Go >= 1.3
    truncates it to 61). Under the seed's policy none of this applies.
17. *Coalescing keeps a right neighbour's needs-zeroing mark.* When MHeap_FreeLocked
    merges a span with both neighbours, the seed ORs the right neighbour's mark into the
    freed span's old first word, which is then inside the merged span: the mark is lost
    and a later allocation of those pages can skip clearing dirty memory. goheap ORs it
    into the merged span's first word. Only zeroing differs; no statistic does.
'''

from __future__ import annotations

import numpy as np

from ._jit import jit, jit_inline
from .bitmap import get_bits, is_allocated, markallocated, markfreed, markspan, setblockspecial, unmarkspan
from .constants import (
    BIT_ALLOCATED,
    BIT_SPECIAL,
    FLAG_NO_GC,
    FLAG_NO_POINTERS,
    FLAG_NO_PROFILING,
    MAX_SMALL_SIZE,
    MSPAN_IN_USE,
    MTYPES_BYTES,
    MTYPES_BYTES_SLOTS,
    MTYPES_EMPTY,
    MTYPES_SINGLE,
    MTYPES_WORDS,
)
from .layout import (
    E_BAD_SIZE,
    E_DOUBLE_FREE,
    E_INTERIOR,
    E_NOT_ALLOCATED,
    E_NOT_IN_HEAP,
    E_OUT_OF_MEMORY,
    E_OUTSIDE_BLOCK,
    E_TAIL,
    E_UNALIGNED,
    H_ARENA_END,
    H_ARENA_START,
    H_ARENA_USED,
    H_BASE,
    H_ERR_ARG,
    H_IN_GC,
    H_MEMPROFILE_RATE,
    H_PAGE_SHIFT,
    H_PROF_ORIGIN,
    H_RACE,
    H_SETTYPE_PENDING,
    L_LIST,
    LC_ALLOC_PATH,
    LC_FLUSH_BYTES,
    LC_FLUSH_NEW,
    LC_LOCAL_ALLOC,
    LC_LOCAL_NFREE,
    LC_LOCAL_NLOOKUP,
    LC_LOCAL_NMALLOC,
    LC_INUSE,
    LC_LOCAL_TOTAL_ALLOC,
    LC_NEXT_SAMPLE,
    LC_SETTYPE_N,
    PATH_LARGE,
    PATH_PROFILE,
    PATH_SETTYPE_FLUSH,
    SETTYPE_BUF_LEN,
    SP_ELEMSIZE,
    SP_FREELIST,
    SP_LIMIT,
    SP_SIZECLASS,
    SP_STATE,
    SP_TYPES_COMPRESSION,
    SP_TYPES_DATA,
    PROF_ORIGIN_GC_SETTYPE,
    PROF_ORIGIN_SETTYPE,
)
from .mcache import fastrand1, mcache_alloc, mcache_free
from .mheap import load, mheap_alloc, mheap_free, mheap_lookup, mheap_lookup_maybe, span_base, span_bytes, store
from .mprof import mprof_free, mprof_malloc
from .race import racefree

_BIT_ALLOCATED = np.int64(BIT_ALLOCATED)
_BIT_SPECIAL = np.int64(BIT_SPECIAL)


# ================================================================ size classes


@jit
def size_to_class(rt, size):
    """SizeToClass: the class of a request (0 < size <= 32768); 0 where it is larger than every class."""
    if size > 1024 - 8:
        return rt.size_to_class128[(size - 1024 + 127) >> 7]
    return rt.size_to_class8[(size + 7) >> 3]


# ================================================================ mallocgc


@jit
def malloc_nogc(rt, c, size, flag, zeroed):
    """mallocgc without its GC trigger (dogc = 0): the address, or a negative E_* code.

    The seed's steps 2-9: count it, take a small object from the cache or a large span
    from the heap, mark it allocated in the bitmap, and maybe sample it for the profile.
    """
    if size < 0 or size > rt.h[H_ARENA_END] - rt.h[H_ARENA_START]:
        rt.h[H_ERR_ARG] = size
        return E_BAD_SIZE
    if size == 0:
        size = 1
    lc = rt.cache_local[c]
    sizeclass = 0
    if size <= MAX_SMALL_SIZE:
        sizeclass = size_to_class(rt, size)  # 0 past a policy's largest class: a large object
    if sizeclass != 0:
        size = rt.class_to_size[sizeclass]
        v = mcache_alloc(rt, c, sizeclass, size, zeroed)
        if v == 0:
            rt.h[H_ERR_ARG] = size
            return E_OUT_OF_MEMORY
        lc[LC_LOCAL_NMALLOC] += 1
        lc[LC_LOCAL_ALLOC] += size
        lc[LC_LOCAL_TOTAL_ALLOC] += size
        rt.cache_by_size[c, sizeclass, 0] += 1
    else:
        shift = rt.h[H_PAGE_SHIFT]
        npages = size >> shift
        if size & ((1 << shift) - 1):
            npages += 1
        lc[LC_ALLOC_PATH] |= PATH_LARGE
        s = mheap_alloc(rt, c, npages, 0, True, zeroed)
        if s == 0:
            rt.h[H_ERR_ARG] = size
            return E_OUT_OF_MEMORY
        lc[LC_LOCAL_NMALLOC] += 1
        size = npages << shift
        lc[LC_LOCAL_ALLOC] += size
        lc[LC_LOCAL_TOTAL_ALLOC] += size
        v = span_base(rt, s)
        markspan(rt, v, 0, 0, True)

    if not (flag & FLAG_NO_GC):
        markallocated(rt, v, (flag & FLAG_NO_POINTERS) != 0)

    rate = rt.h[H_MEMPROFILE_RATE]
    if not (flag & FLAG_NO_PROFILING) and rate > 0:
        sample = True
        if size < rate:
            if lc[LC_NEXT_SAMPLE] > size:
                lc[LC_NEXT_SAMPLE] -= size
                sample = False
            else:
                if rate > 0x3FFFFFFF:
                    rate = 0x3FFFFFFF
                lc[LC_NEXT_SAMPLE] = fastrand1(rt) % (2 * rate)
        if sample:
            lc[LC_ALLOC_PATH] |= PATH_PROFILE
            setblockspecial(rt, v, True)
            mprof_malloc(rt, c, v, size)
    return v


# ================================================================ free


@jit
def free_check(rt, v):
    """0 if v may be freed (the start of an allocated block), else a negative E_* code.

    Runs before anything is touched, so a refused free leaves the heap as it was.
    """
    rt.h[H_ERR_ARG] = v
    if v < rt.h[H_ARENA_START] or v >= rt.h[H_ARENA_USED]:
        return E_NOT_IN_HEAP
    s = mheap_lookup_maybe(rt, v)
    if s == 0:
        # In a free span. If v bears a needs-zeroing mark (word 0 of a freed span's first
        # page, word 1 of a freed small object), a block that started there was freed.
        if (v & 7) == 0:
            if (v & ((1 << rt.h[H_PAGE_SHIFT]) - 1)) == 0 and load(rt, v) == 1:
                return E_DOUBLE_FREE
            if v + 8 < rt.h[H_ARENA_USED] and load(rt, v + 8) == 1:
                return E_DOUBLE_FREE
        return E_NOT_ALLOCATED
    start = span_base(rt, s)
    if rt.spans[s, SP_SIZECLASS] == 0:
        if v != start:
            return E_INTERIOR
        return 0
    if v >= rt.spans[s, SP_LIMIT]:
        return E_TAIL
    size = rt.spans[s, SP_ELEMSIZE]
    if start + (v - start) // size * size != v:
        return E_INTERIOR
    if is_allocated(rt, v):
        return 0
    # Not allocated in the bitmap: free already, or allocated with FLAG_NO_GC. Only a walk of
    # the free lists can tell; this is the rare path, so it may be slow.
    if _on_a_free_list(rt, s, v):
        return E_DOUBLE_FREE
    return 0


@jit
def _on_a_free_list(rt, s, v):
    p = rt.spans[s, SP_FREELIST]
    while p != 0:
        if p == v:
            return True
        p = load(rt, p)
    sizeclass = rt.spans[s, SP_SIZECLASS]
    for c in range(rt.cache_list.shape[0]):
        p = rt.cache_list[c, sizeclass, L_LIST]
        while p != 0:
            if p == v:
                return True
            p = load(rt, p)
    return False


@jit
def free(rt, c, v):
    """runtime.free: give back the block at v (0 is ignored). Returns 0 or a negative E_* code.

    The common case needs no check beyond the bitmap: only the first word of an allocated
    block has its allocated bit set. Anything else (including FlagNoGC blocks) takes the
    full check of :func:`free_check`.
    """
    if v == 0:
        return 0
    h = rt.h
    bits = 0
    if (v & 7) == 0 and h[H_ARENA_START] <= v < h[H_ARENA_USED]:
        bits = get_bits(rt, v)
    if (bits & _BIT_ALLOCATED) == 0:
        err = free_check(rt, v)
        if err != 0:
            return err
    s = mheap_lookup(rt, v)
    if h[H_RACE] != 0:
        racefree(rt, v, s)  # race mode: a write of the whole block, then its words marked freed
    if h[H_SETTYPE_PENDING] != 0:
        settype_cancel(rt, c, v)
    prof = (bits & _BIT_SPECIAL) != 0
    sizeclass = rt.spans[s, SP_SIZECLASS]
    if sizeclass == 0:
        size = span_bytes(rt, s)
        store(rt, v, 1)  # needs zeroing
        markfreed(rt, v)
        unmarkspan(rt, v, 1 << rt.h[H_PAGE_SHIFT])
        mheap_free(rt, c, s, True)
    else:
        size = rt.spans[s, SP_ELEMSIZE]  # class_to_size[sizeclass], from the span row already at hand
        compression = rt.spans[s, SP_TYPES_COMPRESSION]
        if compression != MTYPES_EMPTY:
            # the slot's next block may be untyped: it must not be scanned as this one's type
            # (sweepspan forgets the type of what it frees; the seed's free never met a typed block)
            cleartype(rt, compression, rt.spans[s, SP_TYPES_DATA], (v - span_base(rt, s)) // size)
        if size > 8:
            store(rt, v + 8, 1)  # needs zeroing
        markfreed(rt, v)
        rt.cache_by_size[c, sizeclass, 1] += 1
        mcache_free(rt, c, v, sizeclass, size)
    lc = rt.cache_local[c]
    lc[LC_LOCAL_NLOOKUP] += 1  # the seed's free finds the block with mlookup
    lc[LC_LOCAL_NFREE] += 1
    lc[LC_LOCAL_ALLOC] -= size
    if prof:
        mprof_free(rt, v, size)
    return 0


# ================================================================ mlookup


@jit
def mlookup(rt, c, v):
    """(base, size, span) of the block holding v, interior pointers allowed; (0, 0, 0) if none.

    Like the seed, it does not consult the bitmap: a free slot of an in-use span is found too.
    """
    rt.cache_local[c, LC_LOCAL_NLOOKUP] += 1
    return _block_of(rt, v)


@jit
def _block_of(rt, v):
    s = mheap_lookup_maybe(rt, v)
    if s == 0:
        return 0, 0, 0
    start = span_base(rt, s)
    if rt.spans[s, SP_SIZECLASS] == 0:
        return start, span_bytes(rt, s), s
    if v >= rt.spans[s, SP_LIMIT]:
        return 0, 0, 0
    size = rt.spans[s, SP_ELEMSIZE]
    return start + (v - start) // size * size, size, s


@jit
def mlookup_allocated(rt, c, v):
    """mlookup of an allocated block only: (base, size, 0), else (0, 0, E_*). Counted as a lookup."""
    rt.cache_local[c, LC_LOCAL_NLOOKUP] += 1
    return allocated_block(rt, v)


@jit
def allocated_block(rt, v):
    """(base, size, 0) of the allocated block holding v (interior pointers allowed), else (0, 0, E_*).

    mlookup finds free slots too; this is what the checked accessors accept (Heap.lookup,
    load_word, view, goheap.nb.checked): a block with its allocated bit set, a large span
    in use, or a FlagNoGC block, which has no allocated bit and is told from a free slot by
    a walk of the free lists (the rare, slow path, as in free_check).
    """
    if v < rt.h[H_ARENA_START] or v >= rt.h[H_ARENA_USED]:
        return 0, 0, E_NOT_IN_HEAP
    base, size, s = _block_of(rt, v)
    if base == 0:
        return 0, 0, E_NOT_ALLOCATED
    if rt.spans[s, SP_SIZECLASS] != 0 and not is_allocated(rt, base) and _on_a_free_list(rt, s, base):
        return 0, 0, E_NOT_ALLOCATED
    return base, size, 0


@jit
def checked_range(rt, addr, nbytes, align):
    """0 if [addr, addr+nbytes) lies inside one allocated block and addr is a multiple of align, else E_*.

    Not counted as a lookup. The faulting address is left in h[H_ERR_ARG].
    """
    rt.h[H_ERR_ARG] = addr
    if addr % align != 0:
        return E_UNALIGNED
    base, size, err = allocated_block(rt, addr)
    if err != 0:
        return err
    if addr + nbytes > base + size:
        return E_OUTSIDE_BLOCK
    return 0


# ================================================================ settype and span type arrays


@jit_inline
def settype(rt, c, v, typ):
    """Record that the block at v holds type word ``typ``; buffered per cache, as per M in the seed."""
    n = rt.cache_local[c, LC_SETTYPE_N]
    rt.settype_buf[c, n] = v
    rt.settype_buf[c, n + 1] = typ
    n += 2
    rt.cache_local[c, LC_SETTYPE_N] = n
    rt.h[H_SETTYPE_PENDING] += 1
    if n == SETTYPE_BUF_LEN:
        rt.cache_local[c, LC_ALLOC_PATH] |= PATH_SETTYPE_FLUSH
        settype_flush(rt, c)


@jit
def settype_cancel(rt, c, v):
    """Drop the buffered settype calls of the block at v, which cache c is freeing (goheap's free only).

    Flushed later, they would type whatever block takes the slot next. The other entries
    keep their order. Cache c's own buffer first: when it holds every pending call (one
    thread allocating and freeing typed blocks) no other is looked at.
    """
    _settype_cancel_in(rt, c, v)
    if rt.cache_local[c, LC_SETTYPE_N] // 2 == rt.h[H_SETTYPE_PENDING]:
        return
    for k in range(rt.cache_local.shape[0]):
        if k != c and rt.cache_local[k, LC_INUSE] != 0:
            _settype_cancel_in(rt, k, v)


@jit
def _settype_cancel_in(rt, c, v):
    n = rt.cache_local[c, LC_SETTYPE_N]
    kept = 0
    for k in range(0, n, 2):
        if rt.settype_buf[c, k] == v:
            continue
        rt.settype_buf[c, kept] = rt.settype_buf[c, k]
        rt.settype_buf[c, kept + 1] = rt.settype_buf[c, k + 1]
        kept += 2
    rt.cache_local[c, LC_SETTYPE_N] = kept
    rt.h[H_SETTYPE_PENDING] -= (n - kept) // 2


@jit
def cleartype(rt, compression, type_data, i):
    """Forget the type of slot i of a small-object span whose type record is (compression, type_data)."""
    if compression == MTYPES_WORDS:
        store(rt, type_data + 8 * i, 0)
    elif compression == MTYPES_BYTES:
        rt.mem8[type_data + MTYPES_BYTES_SLOTS * 8 + i - rt.h[H_BASE]] = 0


@jit
def _load_byte(rt, addr):
    return rt.mem8[addr - rt.h[0]]


@jit
def _store_byte(rt, addr, value):
    rt.mem8[addr - rt.h[0]] = value


@jit
def settype_flush(rt, c):
    """Apply cache c's buffered settype calls to the span type arrays (MTypes compression).

    The type arrays it allocates are charged in the profile to runtime.settype_flush,
    called from the collector or from runtime.new's settype (see mprof.py).
    """
    origin = rt.h[H_PROF_ORIGIN]
    rt.h[H_PROF_ORIGIN] = PROF_ORIGIN_GC_SETTYPE if rt.h[H_IN_GC] != 0 else PROF_ORIGIN_SETTYPE
    _settype_flush(rt, c)
    rt.h[H_PROF_ORIGIN] = origin


@jit_inline
def block_index(offset, recip):
    """The number of the block that starts ``offset`` bytes into its span, given 1 / the block
    size: without the division (most of the cost of finding a block's type). The quotient
    is exact, so rounding its floating-point estimate recovers it (relative error < 2**-51)."""
    return int(offset * recip + 0.5)


@jit_inline
def _same_span_run(start, size, ntypes, data):
    """_settype_flush's run of blocks in one span: (start, limit, address of the byte
    array's entries, 1 / the block size for :func:`block_index`)."""
    return start, start + ntypes * size, data + MTYPES_BYTES_SLOTS * 8, 1.0 / size


@jit
def _settype_flush(rt, c):
    n = rt.cache_local[c, LC_SETTYPE_N]
    rt.cache_local[c, LC_SETTYPE_N] = 0
    rt.h[H_SETTYPE_PENDING] -= n // 2
    spans = rt.spans
    # The common case: the block before was of the same span and type, so its byte slot is
    # known. That span's blocks are [last_start, last_limit), its byte array's entries start
    # at last_bytes, and last_recip is 1 / its block size: nothing the loop does frees a span
    # or changes its type array while last_s is set.
    last_s = 0
    last_typ = 0
    last_j = 0
    last_start = 0
    last_limit = 0
    last_bytes = 0
    last_recip = 0.0
    for k in range(0, n, 2):
        v = rt.settype_buf[c, k]
        typ = rt.settype_buf[c, k + 1]
        if last_s != 0 and typ == last_typ and last_start <= v < last_limit:
            _store_byte(rt, last_bytes + block_index(v - last_start, last_recip), last_j)
            continue
        s = mheap_lookup(rt, v)
        if spans[s, SP_STATE] != MSPAN_IN_USE:
            continue  # freed before the flush
        last_s = 0
        if spans[s, SP_SIZECLASS] == 0:
            spans[s, SP_TYPES_COMPRESSION] = MTYPES_SINGLE
            spans[s, SP_TYPES_DATA] = typ
            continue
        size = spans[s, SP_ELEMSIZE]
        start = span_base(rt, s)
        ofs = (v - start) // size
        ntypes = span_bytes(rt, s) // size
        compression = spans[s, SP_TYPES_COMPRESSION]
        if compression == MTYPES_EMPTY:
            data = malloc_nogc(rt, c, MTYPES_BYTES_SLOTS * 8 + ntypes, FLAG_NO_POINTERS, True)
            if data < 0:
                continue  # out of memory: the object stays untyped, scanned conservatively
            spans[s, SP_TYPES_COMPRESSION] = MTYPES_BYTES
            spans[s, SP_TYPES_DATA] = data
            rt.cache_local[c, LC_FLUSH_NEW] = data
            store(rt, data + 8, typ)
            _store_byte(rt, data + MTYPES_BYTES_SLOTS * 8 + ofs, 1)
            last_s, last_typ, last_j = s, typ, 1
            last_start, last_limit, last_bytes, last_recip = _same_span_run(start, size, ntypes, data)
        elif compression == MTYPES_WORDS:
            store(rt, spans[s, SP_TYPES_DATA] + 8 * ofs, typ)
        elif compression == MTYPES_BYTES:
            data = spans[s, SP_TYPES_DATA]
            rt.cache_local[c, LC_FLUSH_BYTES] = data
            j = 1
            while j < MTYPES_BYTES_SLOTS:
                slot = load(rt, data + 8 * j)
                if slot == typ:
                    break
                if slot == 0:
                    store(rt, data + 8 * j, typ)
                    break
                j += 1
            if j < MTYPES_BYTES_SLOTS:
                _store_byte(rt, data + MTYPES_BYTES_SLOTS * 8 + ofs, j)
                last_s, last_typ, last_j = s, typ, j
                last_start, last_limit, last_bytes, last_recip = _same_span_run(start, size, ntypes, data)
            else:
                words = malloc_nogc(rt, c, ntypes * 8, FLAG_NO_POINTERS, True)
                if words < 0:
                    continue
                for i in range(ntypes):
                    idx = _load_byte(rt, data + MTYPES_BYTES_SLOTS * 8 + i)
                    store(rt, words + 8 * i, load(rt, data + 8 * idx))
                store(rt, words + 8 * ofs, typ)
                spans[s, SP_TYPES_COMPRESSION] = MTYPES_WORDS
                spans[s, SP_TYPES_DATA] = words


@jit
def gettype(rt, v):
    """The type word recorded for the block at v, 0 if none (flushed settypes only)."""
    s = mheap_lookup_maybe(rt, v)
    if s == 0:
        return 0
    spans = rt.spans
    return span_type(rt, s, (v - span_base(rt, s)) // spans[s, SP_ELEMSIZE])


@jit_inline
def span_type(rt, s, ofs):
    """The type word recorded for block number ``ofs`` of in-use span s, 0 if none.

    gettype once the block's span and place in it are known.
    """
    return span_type_in(rt.spans, rt.mem, rt.mem8, rt.h[H_BASE], s, ofs)


@jit_inline
def span_type_in(spans, mem, mem8, base, s, ofs):
    """:func:`span_type` over the arrays it reads (the collector's hot path holds them in locals:
    fetching them from the Runtime for every block costs reference counts)."""
    compression = spans[s, SP_TYPES_COMPRESSION]
    if compression == MTYPES_EMPTY:
        return 0
    data = spans[s, SP_TYPES_DATA]
    if compression == MTYPES_SINGLE:
        return data
    if compression == MTYPES_WORDS:
        return mem[((data - base) >> 3) + ofs]
    return mem[((data - base) >> 3) + np.int64(mem8[data + MTYPES_BYTES_SLOTS * 8 + ofs - base])]
