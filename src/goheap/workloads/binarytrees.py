"""binary-trees: an exact port of ../data/go-seed-runs/programs/binarytrees.go.

Same allocation sequence as the Go program, allocation for allocation: every ``&Node{}``
is a 16-byte block with two pointer words (``new(Node)``: mallocgc plus settype of a
registered type), trees are built in the order the 2013 compiler built them, and the
checksums and output lines are the program's.

The roots are the Go program's stack, emulated frame by frame on the thread's goheap
stack (:mod:`goheap.workloads.gostack`). The collector scans it conservatively, like the
seed scans a goroutine stack, dead slots included. Frame shapes follow the code 6g
generated for these functions at the time:

* ``bottomUp`` (5 words: :func:`~goheap.workloads.gostack.node_literal_tree`, shared with
  GCBench's ``makeTree``): both subtrees are built before ``runtime.new``, so trees are
  allocated in post-order;
* ``(*Node).check`` (3 words: return PC, outgoing receiver and result; the running sum
  lives in the caller's result slot);
* ``main``: ``longLived`` in a slot, and the outgoing argument/result pair every call
  goes through. ``t`` and ``stretch`` live in registers (the seed runs show that the
  previous tree is not kept alive while the next one is built).

The stale slots matter: at the start of each tree they still point into the previous
tree, and the seed runs show the collector keeping part of it alive. These shapes were
chosen among the candidates 6g could have produced as the ones that reproduce the seed
runs' collection counts and live objects (see the Departures in the overview essay).

:func:`run_python` is the same program through the Python API only (``Heap.alloc``,
``store_ptr``, ``load_ptr``, explicit roots), for small N: it exercises the public API end
to end, and its roots are exact (Python has no stack the collector could scan).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import nb
from .._runtime._jit import jit
from .._runtime.layout import borrowed, runtime_ref
from ..heap import Heap
from .gostack import RETURN_PC, node_literal_tree

__all__ = ["MIN_DEPTH", "NODE_SIZE", "run", "run_python"]

MIN_DEPTH = 4
NODE_SIZE = 16  # struct { left, right *Node }

CHECK_FRAME = 3  # return PC, outgoing receiver, outgoing result
MAIN_FRAME = 8
MAIN_LONG_LIVED = 1  # main's slot for longLived
MAIN_OUT = 2  # main's outgoing argument; the result follows it


def max_depth_of(n: int) -> int:
    return max(n, MIN_DEPTH + 2)


# ================================================================ the compiled port


@jit
def check(rt, c, args):
    """(*Node).check, the receiver being the caller's outgoing argument at stack word ``args``."""
    b = nb.stack_reserve(rt, c, CHECK_FRAME)
    nb.stack_store(rt, c, b, RETURN_PC)
    n = nb.stack_load(rt, c, args)
    left = nb.load(rt, n)
    if left == 0:
        total = 1
    else:
        out = b + 1
        nb.stack_store(rt, c, out, left)
        total = 1 + check(rt, c, out)
        nb.stack_store(rt, c, out, nb.load(rt, n + 8))
        total += check(rt, c, out)
    nb.stack_store(rt, c, args + 1, total)
    nb.stack_release(rt, c, b)
    return total


@jit
def _tree_and_check(rt, c, node_type, main, depth, buckets):
    out = main + MAIN_OUT
    nb.stack_store(rt, c, out, depth)
    t = node_literal_tree(rt, c, node_type, NODE_SIZE, out, buckets)
    nb.stack_store(rt, c, out, t)
    return check(rt, c, out)


@jit
def stretch(rt, c, node_type, main, depth, buckets):
    """The stretch tree: built, checked, dropped."""
    rt = runtime_ref(rt)  # no reference counting below this call
    return _tree_and_check(rt, c, node_type, main, depth, borrowed(buckets))


@jit
def long_lived(rt, c, node_type, main, depth, buckets):
    """longLived := bottomUp(maxDepth), kept in main's frame until the end."""
    rt = runtime_ref(rt)  # no reference counting below this call
    out = main + MAIN_OUT
    nb.stack_store(rt, c, out, depth)
    t = node_literal_tree(rt, c, node_type, NODE_SIZE, out, borrowed(buckets))
    nb.stack_store(rt, c, main + MAIN_LONG_LIVED, t)
    return t


@jit
def trees(rt, c, node_type, main, depth, count, buckets):
    """``count`` iterations of the inner loop: build a tree of ``depth``, check it; the checks summed."""
    rt = runtime_ref(rt)  # no reference counting below this call
    buckets = borrowed(buckets)
    total = 0
    for _ in range(count):
        total += _tree_and_check(rt, c, node_type, main, depth, buckets)
    return total


@jit
def check_long_lived(rt, c, main):
    rt = runtime_ref(rt)  # no reference counting below this call
    out = main + MAIN_OUT
    nb.stack_store(rt, c, out, nb.stack_load(rt, c, main + MAIN_LONG_LIVED))
    return check(rt, c, out)


def run(heap: Heap, n: int, emit: Callable[[str], None], tick: Callable[[], None], progress: Callable[[float], None]) -> None:
    """main(): print what the Go program prints through ``emit``; ``tick`` after every compiled chunk."""
    max_depth = max_depth_of(n)
    node = heap.register_type("main.Node", NODE_SIZE, (0, 8))
    rt, c = heap.runtime, heap.cache()
    sites = profile_buckets(heap)
    main = nb.stack_reserve(rt, c, MAIN_FRAME)
    nb.stack_store(rt, c, main, RETURN_PC)
    total = _total_allocations(max_depth)
    done = 0

    stretch_depth = max_depth + 1
    check_value = stretch(rt, c, node.id, main, stretch_depth, sites[MAIN_LINE_STRETCH])
    tick()
    done += (1 << (stretch_depth + 1)) - 1
    progress(done / total)
    emit(f"stretch tree of depth {stretch_depth}\t check: {check_value}")

    long_lived(rt, c, node.id, main, max_depth, sites[MAIN_LINE_LONG_LIVED])
    tick()
    done += (1 << (max_depth + 1)) - 1
    for d in range(MIN_DEPTH, max_depth + 1, 2):
        iterations = 1 << (max_depth - d + MIN_DEPTH)
        size = (1 << (d + 1)) - 1
        chunk = max(1, (1 << 16) // size)  # return to Python about every 64K allocations
        check_sum = 0
        i = 0
        while i < iterations:
            k = min(chunk, iterations - i)
            check_sum += trees(rt, c, node.id, main, d, k, sites[MAIN_LINE_TREES])
            tick()
            i += k
            done += k * size
            progress(done / total)
        emit(f"{iterations}\t trees of depth {d}\t check: {check_sum}")

    emit(f"long lived tree of depth {max_depth}\t check: {check_long_lived(rt, c, main)}")
    nb.stack_release(rt, c, main)


# The memory profile charges each node to a Go call stack: bottomUp's allocation site and
# the line of main that called it (the recursive bottomUp frames between are folded).
GO_FILE = "binarytrees.go"
BOTTOM_UP_LINES = (20, 18)  # return &Node{bottomUp(depth - 1), bottomUp(depth - 1)}; return &Node{}
MAIN_LINE_STRETCH = 44  # stretch := bottomUp(stretchDepth)
MAIN_LINE_LONG_LIVED = 49  # longLived := bottomUp(maxDepth)
MAIN_LINE_TREES = 55  # t := bottomUp(d)


def profile_buckets(heap: Heap) -> dict[int, np.ndarray]:
    """For each line of main that calls bottomUp: the buckets of bottomUp's two allocation sites."""
    return {
        line: np.array(
            [
                heap.profile_bucket([("main.bottomUp", GO_FILE, site), ("main.main", GO_FILE, line), "runtime.main"])
                for site in BOTTOM_UP_LINES
            ],
            np.int64,
        )
        for line in (MAIN_LINE_STRETCH, MAIN_LINE_LONG_LIVED, MAIN_LINE_TREES)
    }


def _total_allocations(max_depth: int) -> int:
    total = (1 << (max_depth + 2)) - 1 + (1 << (max_depth + 1)) - 1
    for d in range(MIN_DEPTH, max_depth + 1, 2):
        total += (1 << (max_depth - d + MIN_DEPTH)) * ((1 << (d + 1)) - 1)
    return total


# ================================================================ the same program on the Python API


def run_python(heap: Heap, n: int, emit: Callable[[str], None]) -> None:
    """main() through the public Python API only; roots are explicit handles (for small N)."""
    node_type = heap.register_type("main.Node", NODE_SIZE, (0, 8))
    roots = heap.roots

    def bottom_up_py(depth: int) -> int:
        if depth <= 0:
            return heap.alloc(NODE_SIZE, type=node_type)
        left = bottom_up_py(depth - 1)
        hl = roots.add(left)
        right = bottom_up_py(depth - 1)
        hr = roots.add(right)
        node = heap.alloc(NODE_SIZE, type=node_type)
        heap.store_ptr(node, 0, left)
        heap.store_ptr(node, 1, right)
        roots.remove(hr)
        roots.remove(hl)
        return node

    def check_py(node: int) -> int:
        left = heap.load_ptr(node, 0)
        if left == 0:
            return 1
        return 1 + check_py(left) + check_py(heap.load_ptr(node, 1))

    max_depth = max_depth_of(n)
    stretch_depth = max_depth + 1
    t = bottom_up_py(stretch_depth)
    h = roots.add(t)
    emit(f"stretch tree of depth {stretch_depth}\t check: {check_py(t)}")
    roots.remove(h)

    long_lived_tree = bottom_up_py(max_depth)
    hl = roots.add(long_lived_tree)
    for d in range(MIN_DEPTH, max_depth + 1, 2):
        iterations = 1 << (max_depth - d + MIN_DEPTH)
        check_sum = 0
        for _ in range(iterations):
            t = bottom_up_py(d)
            h = roots.add(t)
            check_sum += check_py(t)
            roots.remove(h)
        emit(f"{iterations}\t trees of depth {d}\t check: {check_sum}")
    emit(f"long lived tree of depth {max_depth}\t check: {check_py(long_lived_tree)}")
    roots.remove(hl)
