"""The constants of malloc.h, mgc0.c and mheap.c (amd64, Linux), each with its derivation.

See :mod:`goheap._runtime.malloc` for the overview. Names are Go's, in upper snake case.
The page size, the size classes and the scavenger's ages are the seed's defaults here; a
heap's policy (:mod:`goheap.policy`) may choose others, which the runtime then reads from
its state (``h[H_PAGE_SHIFT]``, ``class_to_size`` ...), never from these names.
"""

from __future__ import annotations

# ---------------------------------------------------------------- pages and words
PTR_SIZE = 8
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT  # 4096: a *runtime* page; see the glossary in malloc.py
PAGE_MASK = PAGE_SIZE - 1

# ---------------------------------------------------------------- size classes
NUM_SIZE_CLASSES = 61  # class 0 means "large"; InitSizes checks it computes exactly this many
MAX_SMALL_SIZE = 32 << 10  # 32768: larger requests take the large-object path
MAX_SIZE_CLASSES = 256  # classes a policy's table may have (0..255): the runtime keeps central list heads for all

# ---------------------------------------------------------------- allocator tiers
FIX_ALLOC_CHUNK = 128 << 10  # chunk a FixAlloc takes from SysAlloc
MAX_MCACHE_LIST_LEN = 256  # an MCache list this long releases one transfer batch
MAX_MCACHE_SIZE = 2 << 20  # an MCache holding this many free bytes scavenges all its lists
MHEAP_LIST_BYTES = 1 << 20  # spans under 1 MB sit on exact free lists: 1 << (20 - PageShift) of them
MAX_MHEAP_LIST = MHEAP_LIST_BYTES >> PAGE_SHIFT  # 256: exact free lists for 1..255 pages
HEAP_ALLOC_CHUNK = 1 << 20  # minimum heap growth per OS request
GROW_ROUND_BYTES = 64 << 10  # MHeap_Grow rounds its request up to 64 KB
GROW_PAGE_ROUND = GROW_ROUND_BYTES >> PAGE_SHIFT  # 16 pages

# ---------------------------------------------------------------- address space (64-bit layout)
MHEAP_MAP_BITS_64 = 37 - PAGE_SHIFT  # 25: the seed's span map covers 1<<37 bytes
MAX_MEM = 1 << 37  # 128 GB: the default arena
BITMAP_DIVISOR = 16  # 4 bitmap bits per 8-byte word: bitmap = arena / 16
ARENA_HINT_BITMAP = 0x00C0 << 32  # 0xc000000000: the seed asks for its reservation here
BITMAP_CHUNK = 8192  # MHeap_MapBits maps the bitmap in multiples of 8 KB

# ---------------------------------------------------------------- heap bitmap (mgc0.c)
WORDS_PER_BITMAP_WORD = PTR_SIZE * 8 // 4  # 16 heap words per bitmap word
BIT_SHIFT = WORDS_PER_BITMAP_WORD  # distance between the four bit planes
BIT_ALLOCATED = 1 << (0 * BIT_SHIFT)
BIT_NO_POINTERS = 1 << (1 * BIT_SHIFT)  # when allocated: do not scan
BIT_BLOCK_BOUNDARY = 1 << (1 * BIT_SHIFT)  # when not allocated: start of a free block
BIT_MARKED = 1 << (2 * BIT_SHIFT)
BIT_SPECIAL = 1 << (3 * BIT_SHIFT)  # has a finalizer, or is sampled by the profiler
BIT_MASK = BIT_ALLOCATED | BIT_NO_POINTERS | BIT_MARKED | BIT_SPECIAL

# ---------------------------------------------------------------- mallocgc flags (malloc.h)
FLAG_NO_POINTERS = 1
FLAG_NO_PROFILING = 2
FLAG_NO_GC = 4

# ---------------------------------------------------------------- MSpan states and MTypes
MSPAN_IN_USE = 0
MSPAN_FREE = 1
MSPAN_LIST_HEAD = 2
MSPAN_DEAD = 3

MTYPES_EMPTY = 0
MTYPES_SINGLE = 1
MTYPES_WORDS = 2
MTYPES_BYTES = 3
MTYPES_BYTES_SLOTS = 8  # a Bytes type array: 8 words of slots (slot 0 = "no type"), then one byte per object

TYPEINFO_SINGLE_OBJECT = 0
TYPEINFO_ARRAY = 1
TYPEINFO_MAP = 2

# ---------------------------------------------------------------- collector and scavenger
GC_PERCENT_DEFAULT = 100
MAX_GCPROC = 8
PAUSE_HISTORY = 256  # pause_ns[256], circular
FORCE_GC_PERIOD_NS = 120 * 10**9  # the scavenger forces a GC after 2 minutes without one
SCAVENGE_LIMIT_NS = 300 * 10**9  # free spans idle 5 minutes are returned to the OS
SCAVENGER_TICK_NS = min(FORCE_GC_PERIOD_NS, SCAVENGE_LIMIT_NS) // 2  # 60 s
MEM_PROFILE_RATE = 512 * 1024  # average bytes between memory-profile samples
FINBLOCK_BYTES = 4096  # a FinBlock is one SysAlloc'd page of the seed's (Go kept it at 4 KB when pages grew)

# ---------------------------------------------------------------- the runtime's own blocks (HeapConfig.go_process)
# runtime·gc runs the collection on a stack segment of at least StackBig (4096) bytes plus
# the frame and StackExtra overhead; the seed runs show it as one 6144-byte (class 44)
# block allocated and freed per collection.
GC_STACK_SEGMENT_BYTES = 6144
# sizeof(ParFor) + MaxGcproc cache-line-padded ParForThread records: two of them (mark
# and sweep), allocated by the first collection; the seed runs show two class-30 blocks.
PARFOR_BYTES = 104 + MAX_GCPROC * 128

# ---------------------------------------------------------------- bookkeeping sizes (gcc layout, amd64)
SIZEOF_MSPAN = 104
SIZEOF_MCENTRAL = 232
SIZEOF_MCACHE_FIXED = 72  # the MCache without its per-class arrays
SIZEOF_MCACHE_PER_CLASS = 16 + 16  # list[NumSizeClasses] (head, nlist, nlistmin) and local_by_size[NumSizeClasses]
SIZEOF_MCACHE = SIZEOF_MCACHE_FIXED + SIZEOF_MCACHE_PER_CLASS * NUM_SIZE_CLASSES  # 2024
SIZEOF_MHEAP = 268_476_544  # 256 MiB span map plus ~40 KB: the struct the seed SysAllocs at start
# ... of which: free[256] and large (MSpan list heads), central[61], and 208 bytes of scalars
SIZEOF_MHEAP_FIXED = SIZEOF_MHEAP - (MAX_MEM >> PAGE_SHIFT) * 8 - SIZEOF_MSPAN * (MAX_MHEAP_LIST + 1) - SIZEOF_MCENTRAL * NUM_SIZE_CLASSES
