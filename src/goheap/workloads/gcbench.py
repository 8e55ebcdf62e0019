"""GCBench: an exact port of ../data/go-seed-runs/programs/gcbench.go (Boehm's GCBench).

Nodes are 32-byte blocks ``struct { left, right *Node; i, j int }`` (two pointer words, a
registered type, so scanned precisely); trees are built top-down (``populate``: both
children with ``new(Node)``, then the subtrees) and bottom-up (``makeTree``: the
``&Node{left: ..., right: ...}`` literal calls both subtrees, then allocates). The
long-lived ``[]float64`` of 500000 elements is a no-pointer large block, half filled with
1/i. The timing lines print goheap's own elapsed milliseconds.

6g's escape analysis kept two of the program's nodes on the stack: ``temp := new(Node)``
in ``timeConstruction`` and ``longLived := new(Node)`` in ``main`` are only passed to
``populate``, which never lets its argument escape, so each is a zeroed 32-byte variable
in its function's frame and only its children are heap blocks (one node fewer per
top-down tree than a port that allocated it: 44,813 in all).

Roots: the Go stack, emulated frame by frame as 6g compiled each function (``objdump -d``
of the oracle binary; :mod:`goheap.workloads.gostack`):

* ``populate``: 0x10 bytes + return PC, its outgoing pair carrying ``(depth, n.left)``
  and ``(depth, n.right)`` to the recursive calls and the type to ``runtime.new``;
* ``makeTree``: binary-trees' ``bottomUp`` with 32-byte nodes (0x20 bytes + return PC);
* ``timeConstruction``: 0x130 bytes + return PC: ``temp``'s node, ``t0``, the counters;
  the previous bottom-up tree stays in the result word while the next ``makeTree`` runs;
* ``main``: 0x1c0 bytes + return PC: ``longLived``'s node, the array's header, the copy
  of "Garbage Collector Test" that Println's argument needed (runtime.convT2E), kept by
  its interface slot.

fmt.Printf, fmt.Println, time.Now and time.Since write part of the stack below their
caller (the words the oracle binary's calls write, measured); ``runtime.new`` and
``runtime.makeslice`` run the runtime's C frames below it
(:func:`~goheap.workloads.gostack.runtime_new`, :func:`~goheap.workloads.gostack.runtime_makeslice`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .. import nb
from .._runtime._jit import jit
from .._runtime.layout import runtime_ref
from ..heap import Heap
from .gostack import (
    NON_POINTER,
    PRINTF_WRITES,
    TIME_NOW_WRITES,
    TIME_SINCE_WRITES,
    arg,
    clobber,
    enter,
    library_call,
    load_field,
    node_tree,
    runtime_makeslice,
    runtime_new,
    slot,
    stack_address,
    store_field,
    words,
)

__all__ = ["heap_nodes", "num_iters", "run", "tree_size"]

K_STRETCH_TREE_DEPTH = 18
K_LONG_LIVED_TREE_DEPTH = 16
K_ARRAY_SIZE = 500000
K_MIN_TREE_DEPTH = 4
K_MAX_TREE_DEPTH = 16

NODE_SIZE = 32

POPULATE_WORDS = 0x10 // 8 + 1
TC_WORDS = 0x130 // 8 + 1
TC_TEMP = 0xB0  # temp's node: left, right, i, j
TC_T0 = 0xD0  # time.Time: sec, nsec, loc
MAIN_WORDS = 0x1C0 // 8 + 1
MAIN_T_START = 0xB0
MAIN_LONG_LIVED = 0xE8  # longLived's node
MAIN_ARRAY = 0x138  # the array's pointer and length
MAIN_GREETING = 0x160  # the data word of Println's interface argument
SLICE_TYPE = 0x4741B0  # runtime.makeslice's first argument: the slice type (a static address)

# the stack words below the caller's sp written by its first two prints (tools/oracle_trace.py calls)
FIRST_PRINTLN_WRITES = words("1-93,96-110,113-126,128-134,136-137,139-142,144,149,151-153,156-160")
SECOND_PRINTF_WRITES = words(
    "1-62,66-68,76,82,86,122,125-145,147-163,165-169,171-177,179-180,182-189,192,194-227,230-232,234-243"
)


def tree_size(i: int) -> int:
    return (1 << (i + 1)) - 1


def heap_nodes() -> int:
    """The nodes the program allocates on the heap (the roots of the long-lived and top-down trees are on the stack)."""
    nodes = tree_size(K_STRETCH_TREE_DEPTH) + tree_size(K_LONG_LIVED_TREE_DEPTH) - 1
    return nodes + sum(num_iters(d) * (2 * tree_size(d) - 1) for d in range(K_MIN_TREE_DEPTH, K_MAX_TREE_DEPTH + 1, 2))


def num_iters(i: int) -> int:
    return 2 * tree_size(K_STRETCH_TREE_DEPTH) // tree_size(i)


@jit
def populate(rt, c, node_type, buckets):
    """populate(depth, n), its arguments in the caller's outgoing pair; n may be a stack node.

    buckets: the profile buckets of ``n.left = new(Node)`` and ``n.right = new(Node)``.
    """
    b = enter(rt, c, POPULATE_WORDS)
    sp = slot(b, POPULATE_WORDS, 0)
    depth = nb.stack_load(rt, c, arg(b, 0))
    if depth > 0:
        depth -= 1
        nb.stack_store(rt, c, arg(b, 0), depth)  # depth-- writes the argument word
        n = nb.stack_load(rt, c, arg(b, 8))
        nb.stack_store(rt, c, sp, NON_POINTER)  # runtime.new's argument: the Node type
        store_field(rt, c, n, 0, runtime_new(rt, c, node_type, NODE_SIZE, sp, buckets[0]))
        nb.stack_store(rt, c, sp, NON_POINTER)
        store_field(rt, c, n, 8, runtime_new(rt, c, node_type, NODE_SIZE, sp, buckets[1]))
        nb.stack_store(rt, c, sp, depth)
        nb.stack_store(rt, c, sp - 1, load_field(rt, c, n, 0))
        populate(rt, c, node_type, buckets)
        nb.stack_store(rt, c, sp, depth)
        nb.stack_store(rt, c, sp - 1, load_field(rt, c, n, 8))
        populate(rt, c, node_type, buckets)
    nb.stack_release(rt, c, b)




@jit
def stretch_tree(rt, c, node_type, sp, buckets):
    """temp := makeTree(kStretchTreeDepth), from main's frame (sp: its sp word)."""
    rt = runtime_ref(rt)
    nb.stack_store(rt, c, sp, K_STRETCH_TREE_DEPTH)
    return node_tree(rt, c, node_type, NODE_SIZE, buckets)


@jit
def _zero_node(rt, c, b, nwords, o):
    for k in range(NODE_SIZE // 8):
        nb.stack_store(rt, c, slot(b, nwords, o + 8 * k), 0)


@jit
def long_lived_tree(rt, c, node_type, main, buckets):
    """longLived := new(Node) (a zeroed node in main's frame); populate(kLongLivedTreeDepth, longLived)."""
    rt = runtime_ref(rt)
    sp = slot(main, MAIN_WORDS, 0)
    _zero_node(rt, c, main, MAIN_WORDS, MAIN_LONG_LIVED)
    node = stack_address(slot(main, MAIN_WORDS, MAIN_LONG_LIVED))
    nb.stack_store(rt, c, sp, K_LONG_LIVED_TREE_DEPTH)
    nb.stack_store(rt, c, sp - 1, node)
    populate(rt, c, node_type, buckets)
    return node


@jit
def new_array(rt, c, main, bucket):
    """array := make([]float64, kArraySize), kept in main's frame."""
    rt = runtime_ref(rt)
    sp = slot(main, MAIN_WORDS, 0)
    nb.stack_store(rt, c, sp, SLICE_TYPE)
    nb.stack_store(rt, c, sp - 1, K_ARRAY_SIZE)
    nb.stack_store(rt, c, sp - 2, K_ARRAY_SIZE)
    array = runtime_makeslice(rt, c, 8 * K_ARRAY_SIZE, K_ARRAY_SIZE, sp, bucket)
    nb.stack_store(rt, c, slot(main, MAIN_WORDS, MAIN_ARRAY), array)
    nb.stack_store(rt, c, slot(main, MAIN_WORDS, MAIN_ARRAY + 8), K_ARRAY_SIZE)
    return array


@jit
def top_down(rt, c, node_type, frame, depth, count, buckets):
    """``count`` iterations of: temp := new(Node) (zeroed in the frame); populate(depth, temp)."""
    rt = runtime_ref(rt)  # no reference counting below this call
    sp = slot(frame, TC_WORDS, 0)
    temp = stack_address(slot(frame, TC_WORDS, TC_TEMP))
    for _ in range(count):
        _zero_node(rt, c, frame, TC_WORDS, TC_TEMP)
        nb.stack_store(rt, c, sp, depth)
        nb.stack_store(rt, c, sp - 1, temp)
        populate(rt, c, node_type, buckets)


@jit
def bottom_up(rt, c, node_type, frame, depth, count, buckets):
    """``count`` iterations of: temp := makeTree(depth) (buckets: makeTree's two sites)."""
    rt = runtime_ref(rt)  # no reference counting below this call
    sp = slot(frame, TC_WORDS, 0)
    for _ in range(count):
        nb.stack_store(rt, c, sp, depth)
        node_tree(rt, c, node_type, NODE_SIZE, buckets)


@jit
def fill_array(rt, array, n):
    """array[i] = 1.0 / float64(i) for i < n (i = 0 gives +Inf, as in Go)."""
    rt = runtime_ref(rt)  # no reference counting below this call
    values = rt.mem.view(np.float64)
    base = (array - rt.h[0]) >> 3
    if n > 0:
        values[base] = np.inf
    for i in range(1, n):
        values[base + i] = 1.0 / i


@jit
def array_element(rt, array, i):
    rt = runtime_ref(rt)  # no reference counting below this call
    return rt.mem.view(np.float64)[((array - rt.h[0]) >> 3) + i]


@jit
def time_call(rt, c, sp, t, ks):
    """t := time.Now() (results: three words at the caller's sp) or time.Since(t) (the
    argument there, the Duration after it): seconds, nanoseconds, the *Location (a static)."""
    rt = runtime_ref(rt)
    nb.stack_store(rt, c, sp, NON_POINTER)
    nb.stack_store(rt, c, sp - 1, NON_POINTER)
    nb.stack_store(rt, c, sp - 2, NON_POINTER)
    if t >= 0:
        nb.stack_store(rt, c, sp - 3, NON_POINTER)
    clobber(rt, c, sp, ks)


# The memory profile charges each node to a Go call stack: the allocation site, then the
# callers up to main (the recursive frames of makeTree and populate are folded).
GO_FILE = "gcbench.go"
MAKE_TREE = (("main.makeTree", GO_FILE, 53), ("main.makeTree", GO_FILE, 51))  # &Node{...}; new(Node)
POPULATE = (("main.populate", GO_FILE, 42), ("main.populate", GO_FILE, 43))  # n.left, n.right = new(Node)


def profile_buckets(heap: Heap) -> dict[str, np.ndarray]:
    """The profile buckets of every allocation site, by the code that reaches it."""

    def main(line):
        return [("main.main", GO_FILE, line), "runtime.main"]

    def time_construction(line):
        return [("main.timeConstruction", GO_FILE, line), *main(106)]

    def buckets(*stacks):
        return np.array([heap.profile_bucket(s) for s in stacks], np.int64)

    return {
        "stretch": buckets(*([site, *main(87)] for site in MAKE_TREE)),  # temp := makeTree(kStretchTreeDepth)
        "long_lived": buckets(*([site, *main(96)] for site in POPULATE)),  # populate(kLongLivedTreeDepth, longLived)
        "array": buckets(main(100)),  # make([]float64, kArraySize)
        "top_down": buckets(*([site, *time_construction(65)] for site in POPULATE)),  # populate(depth, temp)
        "bottom_up": buckets(*([site, *time_construction(72)] for site in MAKE_TREE)),
    }


def run(heap: Heap, args: tuple[()], go, tick: Callable[[], None], progress: Callable[[float], None]) -> None:
    node = heap.register_type("main.Node", NODE_SIZE, (0, 8))
    rt, c = heap.runtime, heap.cache()
    sites = profile_buckets(heap)
    main = enter(rt, c, MAIN_WORDS)
    sp = slot(main, MAIN_WORDS, 0)
    total = heap_nodes()
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        tick()
        done += n
        progress(done / total)

    # fmt.Println("Garbage Collector Test"): the string goes into an interface{} first
    nb.stack_store(rt, c, slot(main, MAIN_WORDS, MAIN_GREETING), go.convT2E_string())
    library_call(rt, c, sp, 1, FIRST_PRINTLN_WRITES)
    go.println("Garbage Collector Test")
    library_call(rt, c, sp, 1, SECOND_PRINTF_WRITES)
    go.printf(" Stretching memory with a binary tree of depth %d\n", K_STRETCH_TREE_DEPTH)
    t_start = time.perf_counter()
    time_call(rt, c, sp, -1, TIME_NOW_WRITES)

    stretch_tree(rt, c, node.id, sp, sites["stretch"])
    advance(tree_size(K_STRETCH_TREE_DEPTH))

    library_call(rt, c, sp, 1, PRINTF_WRITES)
    go.printf(" Creating a long-lived binary tree of depth %d\n", K_LONG_LIVED_TREE_DEPTH)
    long_lived = long_lived_tree(rt, c, node.id, main, sites["long_lived"])
    advance(tree_size(K_LONG_LIVED_TREE_DEPTH))

    library_call(rt, c, sp, 1, PRINTF_WRITES)
    go.printf(" Creating a long-lived array of %d doubles\n", K_ARRAY_SIZE)
    array = new_array(rt, c, main, sites["array"][0])
    fill_array(rt, array, K_ARRAY_SIZE // 2)
    advance(1)

    for d in range(K_MIN_TREE_DEPTH, K_MAX_TREE_DEPTH + 1, 2):
        nb.stack_store(rt, c, sp, d)
        frame = enter(rt, c, TC_WORDS)
        tc_sp = slot(frame, TC_WORDS, 0)
        iters = num_iters(d)
        size = tree_size(d)
        chunk = max(1, (1 << 16) // size)
        nb.stack_store(rt, c, tc_sp, d)  # numIters(depth): a leaf, no frame but its return PC
        nb.stack_store(rt, c, tc_sp + 1, NON_POINTER)
        nb.stack_store(rt, c, tc_sp - 1, iters)
        library_call(rt, c, tc_sp, 2, PRINTF_WRITES)
        go.printf("Creating %d trees of depth %d\n", iters, d)
        for construct, label, where, nodes in (
            (top_down, "Top down", "top_down", size - 1),
            (bottom_up, "Bottom up", "bottom_up", size),
        ):
            t0 = time.perf_counter()
            time_call(rt, c, tc_sp, -1, TIME_NOW_WRITES)
            i = 0
            while i < iters:
                k = min(chunk, iters - i)
                construct(rt, c, node.id, frame, d, k, sites[where])
                i += k
                advance(k * nodes)
            time_call(rt, c, tc_sp, 0, TIME_SINCE_WRITES)
            library_call(rt, c, tc_sp, 1, PRINTF_WRITES)
            go.printf("\t%s construction took %d msec\n", label, int((time.perf_counter() - t0) * 1000))
        nb.stack_release(rt, c, frame)

    if long_lived == 0 or array_element(rt, array, 1000) != 1.0 / 1000:
        go.println("Failed")
    time_call(rt, c, sp, 0, TIME_SINCE_WRITES)
    library_call(rt, c, sp, 1, PRINTF_WRITES)
    go.printf("Completed in %d msec\n", int((time.perf_counter() - t_start) * 1000))
    nb.stack_release(rt, c, main)
