"""GCBench: an exact port of ../data/go-seed-runs/programs/gcbench.go (Boehm's GCBench).

Nodes are 32-byte blocks ``struct { left, right *Node; i, j int }`` (two pointer words, a
registered type, so scanned precisely); trees are built top-down (``populate``: the node
first, then ``n.left = new(Node)``, ``n.right = new(Node)``, then the subtrees) and
bottom-up (``makeTree``: the ``&Node{left: ..., right: ...}`` literal calls both subtrees,
then allocates, as 6g compiled it). The long-lived ``[]float64`` of 500000 elements is a
no-pointer large block, half filled with 1/i. The timing lines print goheap's own
elapsed milliseconds.

Roots: the Go stack, emulated frame by frame (:mod:`goheap.workloads.gostack`):
``makeTree`` is binary-trees' ``bottomUp`` with bigger nodes (the same function,
:func:`~goheap.workloads.gostack.node_literal_tree`); ``populate`` needs no
temporaries (3 words: return PC and the outgoing pair); ``timeConstruction`` and ``main``
keep their variables in slots and pass every call through an outgoing area whose words
stay as the last call left them. So ``temp = nil`` does not release the previous tree
while the next ``makeTree`` or ``new`` runs: its pointer is still in the result word.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .. import nb
from .._runtime._jit import jit
from .._runtime.layout import runtime_ref
from ..heap import Heap
from .gostack import RETURN_PC, new_object, node_literal_tree

__all__ = ["run", "tree_size", "num_iters"]

K_STRETCH_TREE_DEPTH = 18
K_LONG_LIVED_TREE_DEPTH = 16
K_ARRAY_SIZE = 500000
K_MIN_TREE_DEPTH = 4
K_MAX_TREE_DEPTH = 16

NODE_SIZE = 32

POPULATE_FRAME = 3  # return PC, outgoing pair
TC_FRAME = 8  # timeConstruction: return PC, iters, i, t0 (3 words), outgoing pair
TC_OUT = 6
MAIN_FRAME = 10  # return PC, longLived, array (3 words), tStart (3 words), outgoing pair
MAIN_LONG_LIVED = 1
MAIN_ARRAY = 2
MAIN_OUT = 8


def tree_size(i: int) -> int:
    return (1 << (i + 1)) - 1


def num_iters(i: int) -> int:
    return 2 * tree_size(K_STRETCH_TREE_DEPTH) // tree_size(i)


@jit
def populate(rt, c, node_type, args, buckets):
    """populate(depth, n) with (depth, n) the caller's outgoing pair at stack word ``args``.

    buckets: the profile buckets of ``n.left = new(Node)`` and ``n.right = new(Node)``.
    """
    b = nb.stack_reserve(rt, c, POPULATE_FRAME)
    nb.stack_store(rt, c, b, RETURN_PC)
    depth = nb.stack_load(rt, c, args)
    if depth > 0:
        depth -= 1
        nb.stack_store(rt, c, args, depth)  # depth-- writes the argument slot
        n = nb.stack_load(rt, c, args + 1)
        out = b + 1
        nb.store(rt, n, new_object(rt, c, node_type, NODE_SIZE, out, buckets[0]))
        nb.store(rt, n + 8, new_object(rt, c, node_type, NODE_SIZE, out, buckets[1]))
        nb.stack_store(rt, c, out, depth)
        nb.stack_store(rt, c, out + 1, nb.load(rt, n))
        populate(rt, c, node_type, out, buckets)
        nb.stack_store(rt, c, out, depth)
        nb.stack_store(rt, c, out + 1, nb.load(rt, n + 8))
        populate(rt, c, node_type, out, buckets)
    nb.stack_release(rt, c, b)


@jit
def stretch_tree(rt, c, node_type, out, buckets):
    """temp := makeTree(kStretchTreeDepth), from main (an entry point: makeTree itself only
    ever runs on a RuntimeRef, so that its recursion has one compiled specialization)."""
    rt = runtime_ref(rt)
    return node_literal_tree(rt, c, node_type, NODE_SIZE, out, buckets)


@jit
def long_lived_tree(rt, c, node_type, out, buckets):
    """longLived := new(Node); populate(kLongLivedTreeDepth, longLived), from main."""
    rt = runtime_ref(rt)
    long_lived = new_object(rt, c, node_type, NODE_SIZE, out, buckets[0])
    nb.stack_store(rt, c, out, K_LONG_LIVED_TREE_DEPTH)
    nb.stack_store(rt, c, out + 1, long_lived)
    populate(rt, c, node_type, out, buckets[1:])
    return long_lived


@jit
def top_down(rt, c, node_type, frame, depth, count, buckets):
    """``count`` iterations of: temp := new(Node); populate(depth, temp); temp = nil.

    buckets: the profile buckets of ``temp := new(Node)`` and of populate's two sites.
    """
    rt = runtime_ref(rt)  # no reference counting below this call
    out = frame + TC_OUT
    for _ in range(count):
        temp = new_object(rt, c, node_type, NODE_SIZE, out, buckets[0])
        nb.stack_store(rt, c, out, depth)
        nb.stack_store(rt, c, out + 1, temp)
        populate(rt, c, node_type, out, buckets[1:])


@jit
def bottom_up(rt, c, node_type, frame, depth, count, buckets):
    """``count`` iterations of: temp := makeTree(depth); temp = nil (buckets: makeTree's two sites)."""
    rt = runtime_ref(rt)  # no reference counting below this call
    out = frame + TC_OUT
    for _ in range(count):
        nb.stack_store(rt, c, out, depth)
        node_literal_tree(rt, c, node_type, NODE_SIZE, out, buckets)


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
        "long_lived": buckets(main(95), *([site, *main(96)] for site in POPULATE)),  # new(Node); populate
        "array": buckets(main(100)),  # make([]float64, kArraySize)
        "top_down": buckets(time_construction(64), *([site, *time_construction(65)] for site in POPULATE)),
        "bottom_up": buckets(*([site, *time_construction(72)] for site in MAKE_TREE)),
    }


def _printf(rt, c, out: int) -> None:
    """A fmt call: its arguments overwrite the outgoing pair (format string and args slice, no heap pointers)."""
    nb.stack_store(rt, c, out, RETURN_PC)
    nb.stack_store(rt, c, out + 1, RETURN_PC)


def run(heap: Heap, args: tuple[()], emit: Callable[[str], None], tick: Callable[[], None], progress: Callable[[float], None]) -> None:
    node = heap.register_type("main.Node", NODE_SIZE, (0, 8))
    rt, c = heap.runtime, heap.cache()
    sites = profile_buckets(heap)
    main = nb.stack_reserve(rt, c, MAIN_FRAME)
    nb.stack_store(rt, c, main, RETURN_PC)
    out = main + MAIN_OUT
    total = tree_size(K_STRETCH_TREE_DEPTH) + tree_size(K_LONG_LIVED_TREE_DEPTH) + 1
    total += sum(2 * num_iters(d) * tree_size(d) for d in range(K_MIN_TREE_DEPTH, K_MAX_TREE_DEPTH + 1, 2))
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        tick()
        done += n
        progress(done / total)

    emit("Garbage Collector Test")
    _printf(rt, c, out)
    emit(f" Stretching memory with a binary tree of depth {K_STRETCH_TREE_DEPTH}")
    t_start = time.perf_counter()

    nb.stack_store(rt, c, out, K_STRETCH_TREE_DEPTH)
    stretch_tree(rt, c, node.id, out, sites["stretch"])
    advance(tree_size(K_STRETCH_TREE_DEPTH))

    _printf(rt, c, out)
    emit(f" Creating a long-lived binary tree of depth {K_LONG_LIVED_TREE_DEPTH}")
    long_lived = long_lived_tree(rt, c, node.id, out, sites["long_lived"])
    nb.stack_store(rt, c, main + MAIN_LONG_LIVED, long_lived)
    advance(tree_size(K_LONG_LIVED_TREE_DEPTH))

    _printf(rt, c, out)
    emit(f" Creating a long-lived array of {K_ARRAY_SIZE} doubles")
    with heap.attributing_allocations(sites["array"][0]):
        array = heap.alloc(8 * K_ARRAY_SIZE, noscan=True)  # make([]float64, kArraySize)
    for k, word in enumerate((array, K_ARRAY_SIZE, K_ARRAY_SIZE)):
        nb.stack_store(rt, c, main + MAIN_ARRAY + k, word)
    fill_array(rt, array, K_ARRAY_SIZE // 2)
    advance(1)

    frame = nb.stack_reserve(rt, c, TC_FRAME)
    nb.stack_store(rt, c, frame, RETURN_PC)
    for d in range(K_MIN_TREE_DEPTH, K_MAX_TREE_DEPTH + 1, 2):
        iters = num_iters(d)
        size = tree_size(d)
        chunk = max(1, (1 << 16) // size)
        tc_out = frame + TC_OUT
        _printf(rt, c, tc_out)
        emit(f"Creating {iters} trees of depth {d}")
        for construct, label, where in ((top_down, "Top down", "top_down"), (bottom_up, "Bottom up", "bottom_up")):
            t0 = time.perf_counter()
            i = 0
            while i < iters:
                k = min(chunk, iters - i)
                construct(rt, c, node.id, frame, d, k, sites[where])
                i += k
                advance(k * size)
            _printf(rt, c, tc_out)
            emit(f"\t{label} construction took {int((time.perf_counter() - t0) * 1000)} msec")
    nb.stack_release(rt, c, frame)

    if nb.stack_load(rt, c, main + MAIN_LONG_LIVED) == 0 or array_element(rt, array, 1000) != 1.0 / 1000:
        emit("Failed")
    emit(f"Completed in {int((time.perf_counter() - t_start) * 1000)} msec")
    nb.stack_release(rt, c, main)
