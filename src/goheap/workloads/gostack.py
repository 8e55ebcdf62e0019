"""Go stack frames of 2013, emulated on goheap's per-thread stack: what the ports share.

The seed scans a goroutine's stack conservatively, every word from its top to its base,
dead slots included. The ports keep their roots the same way, and everything here is
derived from the binaries the 2013 toolchain built from ../data/go-seed-runs/programs
(the oracle: tests/data/oracle-runs/README.md), not chosen:

* *The program's frames* are those 6g generated (``objdump -d`` of the oracle binaries):
  each port function reserves a frame of the size 6g gave it and writes its slots in the
  order the compiled code does; a slot it does not write keeps what an earlier frame left
  at that address.
* *The runtime's C frames below them.* ``runtime.new`` (and ``runtime.makeslice``) run
  mallocgc and its callees below the caller's frame, and a collection starts from there:
  the old stack segment is scanned from runtime·gc's frame up, so those C frames are
  roots too. :func:`runtime_new` writes the words they write, with the values they
  write: the new block where the code stores it (runtime.new's settype argument,
  mallocgc's ``v``, MCache_Alloc's ``v`` on its zeroing and refill paths...), a
  non-pointer elsewhere. The words of each path (fast, zeroing, refill, span growth,
  settype flush, profiling sample, collection) were read off the disassembly and checked
  by running the oracle binary under a debugger with the dead stack poisoned
  (``tools/oracle_trace.py calls``). The runtime tells which paths an allocation took
  (:func:`goheap.nb.alloc_path`).
* *Library calls* (fmt.Printf, time.Now, strconv.Atoi...) write part of the stack below
  their caller: :func:`clobber` writes non-pointers where the same debugger run saw the
  call write (the values they write are text and stack addresses, or pointers to fmt's
  printer and buffer, which stay alive anyway).

Addressing: the Go stack grows down, goheap's up. A frame of F words (its locals and
outgoing area, then the return PC) reserved at index ``b`` holds the word ``o`` bytes
above its sp at index ``b + F - 1 - o // 8`` (:func:`slot`); its own arguments and results,
in the caller's outgoing area, are at ``b - 1 - x // 8`` for the one ``x`` bytes into it
(:func:`arg`). The word ``k`` words below a frame's sp is at ``sp + k``, where ``sp`` is
the index of the frame's lowest word.

A pointer to a stack slot (a Go variable the compiler kept on the stack, such as
GCBench's ``temp`` node) is :data:`STACK_TOP` minus 8 times its index: like a real stack
address, never inside the arena, and its fields are addressed as in Go (:func:`store_field`).
"""

from __future__ import annotations

import numpy as np

from .. import nb
from .._runtime._jit import jit
from .._runtime.layout import runtime_ref

__all__ = [
    "NON_POINTER",
    "PRINTF_WRITES",
    "RETURN_PC",
    "STACK_TOP",
    "TIME_NOW_WRITES",
    "TIME_SINCE_WRITES",
    "arg",
    "clobber",
    "enter",
    "library_call",
    "load_field",
    "runtime_makeslice",
    "runtime_new",
    "slot",
    "stack_address",
    "store_field",
    "words",
]

RETURN_PC = 0x400C00  # a return address (a text address): never a heap pointer
NON_POINTER = RETURN_PC  # what the emulation writes where the code writes a non-pointer
STACK_TOP = 0x7FFF00000000  # the Go address of stack word 0 (stack addresses grow down from it)


def words(spec: str) -> np.ndarray:
    """A list of word numbers from ranges such as ``"1-8,10,13-14"``."""
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return np.array(out, np.int64)


# ---------------------------------------------------------------- frames


@jit
def enter(rt, c, nwords):
    """Call a function whose frame is ``nwords`` words (6g's frame size / 8, plus the return PC)."""
    b = nb.stack_reserve(rt, c, nwords)
    nb.stack_store(rt, c, b, RETURN_PC)
    return b


@jit
def slot(b, nwords, o):
    """The index of the word ``o`` bytes above the sp of a frame of ``nwords`` reserved at ``b``."""
    return b + nwords - 1 - o // 8


@jit
def arg(b, x):
    """The index of the argument or result ``x`` bytes into the caller's outgoing area."""
    return b - 1 - x // 8


@jit
def stack_address(i):
    """The Go address of stack word ``i``."""
    return STACK_TOP - 8 * i


@jit
def store_field(rt, c, p, off, value):
    """``*(p + off) = value`` where p is a heap block or a stack variable."""
    if p >= STACK_TOP - (1 << 32):
        nb.stack_store(rt, c, (STACK_TOP - p - off) // 8, value)
    else:
        nb.store(rt, p + off, value)


@jit
def load_field(rt, c, p, off):
    """``*(p + off)`` where p is a heap block or a stack variable."""
    if p >= STACK_TOP - (1 << 32):
        return nb.stack_load(rt, c, (STACK_TOP - p - off) // 8)
    return nb.load(rt, p + off)


@jit
def _write(rt, c, sp, ks, value):
    # Each store checked against the end of the stack: never out of range after the callers'
    # bounds-checked reserve, but the loop's second exit keeps LLVM from turning the loop into
    # one vector scatter, which on AVX-512 machines (AMD Zen 4) costs more than the stores
    # (without it binarytrees 18 takes 4% less CPU there).
    end = runtime_ref(rt).shadow.shape[1]
    for k in ks:
        if sp + k >= end:
            raise MemoryError("goheap: thread stack overflow (raise Limits.shadow_depth)")
        nb.stack_store(rt, c, sp + k, value)


@jit
def clobber(rt, c, sp, ks):
    """A library call from the frame whose sp is the top word ``sp`` wrote the words ``ks`` below it."""
    nb.stack_release(rt, c, sp + 1)
    nb.stack_reserve(rt, c, ks[-1])  # bounds-checked: the words exist
    nb.stack_release(rt, c, sp + 1)
    _write(rt, c, sp, ks, NON_POINTER)


@jit
def library_call(rt, c, sp, nargs, ks):
    """The frame whose sp is the top word ``sp`` calls fmt.Printf(format, args...),
    fmt.Println(args...) or strconv.Atoi(s): its outgoing words get the string header and
    the args slice of ``nargs`` (text and stack addresses, lengths), then the callee's
    frames write the words ``ks`` below it."""
    rt = runtime_ref(rt)  # no reference counting below this call
    nb.stack_store(rt, c, sp, NON_POINTER)
    nb.stack_store(rt, c, sp - 1, NON_POINTER)
    nb.stack_store(rt, c, sp - 2, NON_POINTER)
    nb.stack_store(rt, c, sp - 3, nargs)
    nb.stack_store(rt, c, sp - 4, nargs)
    clobber(rt, c, sp, ks)


# fmt.Printf of integers once its printer exists, time.Now, time.Since: the words below
# the caller's sp they write (the same at every call site of the three oracle programs)
PRINTF_WRITES = words("1-62,66-68,76,82,86,122,125-145,147-163,166-169,175-177,185-189,194,200,202-214,217,221-224")
TIME_NOW_WRITES = words("1-10")
TIME_SINCE_WRITES = words("1-14")


# ---------------------------------------------------------------- runtime.new's C frames
#
# Words below the caller's sp (k = 1 is runtime.new's return PC), by the path the
# allocation took. runtime.new: 7 words + return PC (k 1-8); mallocgc: 12 + return PC
# (k 9-21); its callees (SizeToClass, MCache_Alloc, markallocated, runtime·gc) from k 22.
# A collection scans the old segment from runtime·gc's sp, k 30.

C_FRAME_WORDS = 30
# every allocation: runtime.new's arguments to mallocgc and settype (the latter's v last)
NEW_X = words("1-2,6-7")
NEW_V = words("8")
# mallocgc's locals and arguments to SizeToClass / MCache_Alloc / markallocated, their
# return PCs; its v, and markallocated's
MALLOCGC_X = words("9-10,12,18-20,22-23,27")
MALLOCGC_V = words("15,21")
# MCache_Alloc clears a dirty block: memclr(v, size)
MEMCLR_X = words("30,32")
MEMCLR_V = words("25,31")
# MCache_Alloc's list was empty: MCentral_AllocList (and its callees)
REFILL_X = words("26,29-32,39,41-43,46-50")
REFILL_V = words("24,34")
# ... and the central list too: MCentral_Grow, MHeap_Alloc (purgecachedstats)
GROW_X = words("43-45,52-57,60-74,77-79,81-90")
GROW_V = words("51")
# the sampled allocation: MProf_Malloc and runtime·callers
PROF_X = words("11,17,25,40-55,59-84,89-90,96-97")
# runtime·gc, called from mallocgc, and reflect·call's return PC; mallocgc's own
# argument word keeps only the high half of v (not a block's address)
GC_X = words("21,24-25,28-31")
# runtime.new's settype found its buffer full: settype_flush (a pointer into the M's
# buffer, the M, the type word, the span...), its lock and unlock, its mallocgc for the
# type arrays; two words keep type arrays: the last MTypes_Bytes array it added a type
# to (settype_flush's local) and the last array it allocated (that mallocgc's argument)
FLUSH_X = words("16-20,32,34,37-41,43-51,53-54,58")
FLUSH_BYTES_ARRAY = 29
FLUSH_NEW_ARRAY = 52


@jit
def _enter_gc_frame(rt, c, s, frame_words, bucket):
    """Before mallocgc, from the frame at stack word ``s``: the words runtime·gc's frame
    would overwrite (kept, in case no collection runs), its marks written, the stack
    reserved down to it (a collection scans that far), the profile bucket set; returns the
    kept words and NumGC."""
    kept = (
        nb.stack_load(rt, c, s + 24),
        nb.stack_load(rt, c, s + 25),
        nb.stack_load(rt, c, s + 26),
        nb.stack_load(rt, c, s + 28),
        nb.stack_load(rt, c, s + 29),
        nb.stack_load(rt, c, s + 30),
    )
    _write(rt, c, s, GC_X, NON_POINTER)
    nb.stack_store(rt, c, s + 26, NON_POINTER)  # MCache_Alloc's refill count (a collection always follows a refill)
    nb.stack_reserve(rt, c, frame_words)
    nb.set_profile_bucket(rt, bucket)
    numgc = nb.num_gc(rt)
    nb.alloc_path_reset(rt, c)
    return kept, numgc


@jit
def _leave_gc_frame(rt, c, s, sp, saved):
    """After mallocgc: the stack released to the caller's ``sp``; the kept words put back
    if no collection ran. Whether one ran."""
    kept, numgc = saved
    nb.stack_release(rt, c, sp + 1)
    collected = nb.num_gc(rt) != numgc
    if not collected:
        _restore(rt, c, s, kept[0], kept[1], kept[2], kept[3], kept[4], kept[5])
    return collected


@jit
def runtime_new(rt, c, type_id, size, sp, bucket):
    """runtime.new(T) from the Go frame whose sp is stack word ``sp`` (the top of the stack):
    the new block, also stored in the caller's result word (``sp - 1``); its allocation, if
    sampled, is charged to profile ``bucket``. The caller has written T's word (``sp``).
    """
    nb.stack_release(rt, c, sp + 1)
    nb.stack_reserve(rt, c, 98)  # bounds-checked: every word a path below writes exists
    nb.stack_release(rt, c, sp + 1)
    _write(rt, c, sp, NEW_X, NON_POINTER)
    nb.stack_store(rt, c, sp + 8, size)
    _before_malloc(rt, c, sp)
    saved = _enter_gc_frame(rt, c, sp, C_FRAME_WORDS, bucket)
    v = nb.alloc_typed(rt, c, size, type_id, False)
    collected = _leave_gc_frame(rt, c, sp, sp, saved)
    _after_malloc(rt, c, sp, v, nb.alloc_path(rt, c), collected)
    _write(rt, c, sp, NEW_V, v)
    if nb.alloc_path(rt, c) & nb.PATH_SETTYPE_FLUSH:
        _settype_flush(rt, c, sp)
    nb.stack_store(rt, c, sp - 1, v)
    return v


@jit
def _settype_flush(rt, c, sp):
    _write(rt, c, sp, FLUSH_X, NON_POINTER)
    bytes_array, new_array = nb.settype_flush_arrays(rt, c)
    if bytes_array != 0:
        nb.stack_store(rt, c, sp + FLUSH_BYTES_ARRAY, bytes_array)
    if new_array != 0:
        nb.stack_store(rt, c, sp + FLUSH_NEW_ARRAY, new_array)


@jit
def _before_malloc(rt, c, s):
    """mallocgc's words written before it could collect (s: its caller's sp, 8 words
    above runtime.new's frame); v is not known yet, the runtime keeps it for its collection."""
    _write(rt, c, s, MALLOCGC_X, NON_POINTER)
    _write(rt, c, s, MALLOCGC_V, NON_POINTER)


@jit
def _restore(rt, c, s, s24, s25, s26, s28, s29, s30):
    """No collection ran: runtime·gc's words are what the allocation's callees left there."""
    nb.stack_store(rt, c, s + 24, s24)
    nb.stack_store(rt, c, s + 25, s25)
    nb.stack_store(rt, c, s + 26, s26)
    nb.stack_store(rt, c, s + 28, s28)
    nb.stack_store(rt, c, s + 29, s29)
    nb.stack_store(rt, c, s + 30, s30)


@jit
def _after_malloc(rt, c, sp, v, path, collected):
    """The rest of what the allocation's paths wrote, in the order they ran."""
    if path & nb.PATH_REFILL:
        _write(rt, c, sp, REFILL_X, NON_POINTER)
        _write(rt, c, sp, REFILL_V, v)
    if path & nb.PATH_GROW:
        _write(rt, c, sp, GROW_X, NON_POINTER)
        _write(rt, c, sp, GROW_V, v)
    if path & nb.PATH_MEMCLR:
        _write(rt, c, sp, MEMCLR_X, NON_POINTER)
        _write(rt, c, sp, MEMCLR_V, v)
    if path & nb.PATH_PROFILE:
        _write(rt, c, sp, PROF_X, NON_POINTER)
    _write(rt, c, sp, MALLOCGC_V, v)
    if collected:
        _write(rt, c, sp, GC_X, NON_POINTER)


# ---------------------------------------------------------------- runtime.makeslice's C frames
#
# runtime.makeslice: 6 words + return PC (k 1-7); makeslice1: 8 + return PC (k 8-16);
# mallocgc below them from k 17, so its words and its callees' are runtime.new's, 8 deeper.
# Only no-pointer element types here (no settype).

SLICE_SHIFT = 8
SLICE_C_FRAME_WORDS = C_FRAME_WORDS + SLICE_SHIFT
SLICE_X = words("1-2,4-8,14-16")  # makeslice's and makeslice1's arguments, makeslice1's return PC
# a large block: mallocgc's own words on that path, MHeap_Alloc (clearing the span) and
# markspan below it
LARGE_X = words("17,20-22,26-28,30-31,34-48,56-64")
LARGE_V = words("23,29")


@jit
def runtime_makeslice(rt, c, nbytes, length, sp, bucket):
    """make([]T, length) of a no-pointer T (``nbytes`` bytes) from the Go frame whose sp is
    stack word ``sp``: the new array, also stored with its length and capacity in the
    caller's result words (``sp - 3`` to ``sp - 5``). The caller has written the type,
    length and capacity words."""
    nb.stack_release(rt, c, sp + 1)
    nb.stack_reserve(rt, c, 98 + SLICE_SHIFT)  # bounds-checked: every word a path below writes exists
    nb.stack_release(rt, c, sp + 1)
    _write(rt, c, sp, SLICE_X, NON_POINTER)
    s = sp + SLICE_SHIFT
    _before_malloc(rt, c, s)
    saved = _enter_gc_frame(rt, c, s, SLICE_C_FRAME_WORDS, bucket)
    v = nb.alloc_noscan(rt, c, nbytes)
    collected = _leave_gc_frame(rt, c, s, sp, saved)
    path = nb.alloc_path(rt, c)
    if path & nb.PATH_LARGE:
        _write(rt, c, sp, LARGE_X, NON_POINTER)
        _write(rt, c, sp, LARGE_V, v)
        if path & nb.PATH_PROFILE:
            _write(rt, c, s, PROF_X, NON_POINTER)
        if collected:
            _write(rt, c, s, GC_X, NON_POINTER)
    else:
        _after_malloc(rt, c, s, v, path, collected)
    nb.stack_store(rt, c, sp - 3, v)
    nb.stack_store(rt, c, sp - 4, length)
    nb.stack_store(rt, c, sp - 5, length)
    return v


# The frame 6g gives binary-trees' bottomUp and GCBench's MakeTree alike (each a
# func(depth int) *Node that calls itself twice, then takes the address of a Node literal):
# 0x20 bytes of locals, the two subtrees kept at 0x10 and 0x18.
TREE_WORDS = 0x20 // 8 + 1
TREE_LEFT, TREE_RIGHT = 0x10, 0x18


@jit
def node_tree(rt, c, node_type, node_size, buckets):
    """bottomUp(depth) / MakeTree(depth), the depth in the caller's outgoing word: a tree of
    two-pointer nodes of ``node_size`` bytes. buckets: the profile buckets of the literal's
    and the leaf's allocation sites."""
    b = enter(rt, c, TREE_WORDS)
    sp = slot(b, TREE_WORDS, 0)
    depth = nb.stack_load(rt, c, arg(b, 0))
    if depth <= 0:
        nb.stack_store(rt, c, sp, NON_POINTER)  # runtime.new's argument: the Node type
        n = runtime_new(rt, c, node_type, node_size, sp, buckets[1])
    else:
        nb.stack_store(rt, c, sp, depth - 1)
        left = node_tree(rt, c, node_type, node_size, buckets)
        nb.stack_store(rt, c, slot(b, TREE_WORDS, TREE_LEFT), left)
        nb.stack_store(rt, c, sp, depth - 1)
        right = node_tree(rt, c, node_type, node_size, buckets)
        nb.stack_store(rt, c, slot(b, TREE_WORDS, TREE_RIGHT), right)
        nb.stack_store(rt, c, sp, NON_POINTER)
        n = runtime_new(rt, c, node_type, node_size, sp, buckets[0])
        nb.store(rt, n, left)
        nb.store(rt, n + 8, right)
    nb.stack_store(rt, c, arg(b, 8), n)
    nb.stack_release(rt, c, b)
    return n
