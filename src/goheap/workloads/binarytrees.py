"""binary-trees: an exact port of ../data/go-seed-runs/programs/binarytrees.go.

Same allocation sequence as the Go program, allocation for allocation: every ``&Node{}``
is a 16-byte block with two pointer words (``runtime.new`` of a registered type:
mallocgc plus settype), trees are built in the order the 2013 compiler built them, and
the checksums and output lines are the program's.

The roots are the Go program's stack, emulated frame by frame on the thread's goheap
stack (:mod:`goheap.workloads.gostack`) as 6g compiled each function (``objdump -d`` of
the oracle binary): the collector scans it conservatively, like the seed scans a
goroutine stack, dead slots included.

* ``bottomUp``: 0x20 bytes + return PC. Its outgoing argument word carries ``depth - 1``
  to both recursive calls and the Node type to ``runtime.new``; the result word receives
  each callee's result; two temporaries hold the subtrees until the literal is built, so
  trees are allocated in post-order, and while a frame is in its first call both
  temporaries still hold what an earlier frame left at that address.
* ``(*Node).check``: 0x18 bytes + return PC: the outgoing receiver and result words and
  a temporary for the left subtree's count.
* ``main``: 0x148 bytes + return PC. Every call goes through its outgoing area; the
  argument word keeps the last tree checked until the next call overwrites it;
  ``longLived`` has its own slot; ``t`` and ``stretch`` live in registers. fmt.Printf and
  strconv.Atoi write part of the stack below main (the words the oracle binary's calls
  write, measured: :func:`~goheap.workloads.gostack.clobber`).

Below every ``runtime.new`` the runtime's C frames (mallocgc and its callees) are
emulated too (:func:`~goheap.workloads.gostack.runtime_new`).

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
from .gostack import NON_POINTER, PRINTF_WRITES, arg, enter, library_call, node_tree, slot, words

__all__ = ["MIN_DEPTH", "NODE_SIZE", "run", "run_python"]

MIN_DEPTH = 4
NODE_SIZE = 16  # struct { left, right *Node }

MAIN_WORDS = 0x148 // 8 + 1
MAIN_LONG_LIVED = 0x60
CHECK_WORDS = 0x18 // 8 + 1
CHECK_LEFT = 0x10

# the stack words below main's sp written by its library calls (the oracle binary run
# under a debugger: tools/oracle_trace.py calls); later Printfs write PRINTF_WRITES
ATOI_WRITES = words("1-9,11,14,17-18,30-37,42-43")
FIRST_PRINTF_WRITES = words(
    "1-96,98-163,165-169,171-177,179-180,182-189,192,194-196,199-214,217-224,227-232,238-242,244,247,250-255,259"
)


def max_depth_of(n: int) -> int:
    return max(n, MIN_DEPTH + 2)


# ================================================================ the compiled port




@jit
def check(rt, c):
    """(*Node).check, its receiver in the caller's outgoing word."""
    b = enter(rt, c, CHECK_WORDS)
    sp = slot(b, CHECK_WORDS, 0)
    n = nb.stack_load(rt, c, arg(b, 0))
    if nb.load(rt, n) == 0:
        total = 1
    else:
        nb.stack_store(rt, c, sp, nb.load(rt, n))
        left = check(rt, c)
        nb.stack_store(rt, c, slot(b, CHECK_WORDS, CHECK_LEFT), left)
        nb.stack_store(rt, c, sp, nb.load(rt, n + 8))
        total = left + 1 + check(rt, c)
    nb.stack_store(rt, c, arg(b, 8), total)
    nb.stack_release(rt, c, b)
    return total


@jit
def _tree_and_check(rt, c, node_type, sp, depth, buckets):
    """main's ``t := bottomUp(d); check += t.check()`` (and the stretch tree's)."""
    nb.stack_store(rt, c, sp, depth)
    t = node_tree(rt, c, node_type, NODE_SIZE, buckets)
    nb.stack_store(rt, c, sp, t)
    return check(rt, c)


@jit
def stretch(rt, c, node_type, sp, depth, buckets):
    """The stretch tree: built, checked, dropped."""
    rt = runtime_ref(rt)  # no reference counting below this call
    return _tree_and_check(rt, c, node_type, sp, depth, borrowed(buckets))


@jit
def long_lived(rt, c, node_type, main, depth, buckets):
    """longLived := bottomUp(maxDepth), kept in main's frame until the end."""
    rt = runtime_ref(rt)  # no reference counting below this call
    sp = slot(main, MAIN_WORDS, 0)
    nb.stack_store(rt, c, sp, depth)
    t = node_tree(rt, c, node_type, NODE_SIZE, borrowed(buckets))
    nb.stack_store(rt, c, slot(main, MAIN_WORDS, MAIN_LONG_LIVED), t)
    return t


@jit
def trees(rt, c, node_type, sp, depth, count, buckets):
    """``count`` iterations of the inner loop: build a tree of ``depth``, check it; the checks summed."""
    rt = runtime_ref(rt)  # no reference counting below this call
    buckets = borrowed(buckets)
    total = 0
    for _ in range(count):
        total += _tree_and_check(rt, c, node_type, sp, depth, buckets)
    return total


@jit
def check_long_lived(rt, c, main):
    rt = runtime_ref(rt)  # no reference counting below this call
    sp = slot(main, MAIN_WORDS, 0)
    nb.stack_store(rt, c, sp, nb.stack_load(rt, c, slot(main, MAIN_WORDS, MAIN_LONG_LIVED)))
    return check(rt, c)


def run(heap: Heap, n: int, go, tick: Callable[[], None], progress: Callable[[float], None]) -> None:
    """main(): print through ``go`` (:class:`~goheap.workloads.goprocess.GoProcess`) what the Go
    program prints; ``tick`` after every compiled chunk."""
    max_depth = max_depth_of(n)
    node = heap.register_type("main.Node", NODE_SIZE, (0, 8))
    rt, c = heap.runtime, heap.cache()
    sites = profile_buckets(heap)
    main = nb.stack_reserve(rt, c, MAIN_WORDS)
    nb.stack_store(rt, c, main, NON_POINTER)
    sp = slot(main, MAIN_WORDS, 0)
    total = _total_allocations(max_depth)
    done = 0
    if n:
        library_call(rt, c, sp, 0, ATOI_WRITES)

    stretch_depth = max_depth + 1
    check_value = stretch(rt, c, node.id, sp, stretch_depth, sites[MAIN_LINE_STRETCH])
    tick()
    done += (1 << (stretch_depth + 1)) - 1
    progress(done / total)
    library_call(rt, c, sp, 2, FIRST_PRINTF_WRITES)
    go.printf("stretch tree of depth %d\t check: %d\n", stretch_depth, check_value)

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
            check_sum += trees(rt, c, node.id, sp, d, k, sites[MAIN_LINE_TREES])
            tick()
            i += k
            done += k * size
            progress(done / total)
        library_call(rt, c, sp, 3, PRINTF_WRITES)
        go.printf("%d\t trees of depth %d\t check: %d\n", iterations, d, check_sum)

    check_value = check_long_lived(rt, c, main)
    library_call(rt, c, sp, 2, PRINTF_WRITES)
    go.printf("long lived tree of depth %d\t check: %d\n", max_depth, check_value)
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


def run_python(heap: Heap, n: int, go) -> None:
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
    go.printf("stretch tree of depth %d\t check: %d\n", stretch_depth, check_py(t))
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
        go.printf("%d\t trees of depth %d\t check: %d\n", iterations, d, check_sum)
    go.printf("long lived tree of depth %d\t check: %d\n", max_depth, check_py(long_lived_tree))
    roots.remove(hl)
