"""The compiled API (api.py, through goheap.nb): whole loops of allocation in compiled code,
error codes instead of exceptions, and the bounds of the shadow stack."""

from __future__ import annotations

import numba
import pytest
from heaptools import View, small_heap

import goheap
from goheap import nb
from goheap._runtime import layout as L

pytestmark = pytest.mark.nojit  # interpreted too: CI runs these with NUMBA_DISABLE_JIT=1 (-m nojit)


@numba.njit(cache=True)
def _build_list(rt, c, n):
    head = 0
    for _ in range(n):
        node = nb.alloc(rt, c, 16)
        nb.store(rt, node, head)
        nb.set_root(rt, c, 0, node)
        head = node
    return head


@numba.njit(cache=True)
def _free_list(rt, c, head):
    n = 0
    while head != 0:
        nxt = nb.load(rt, head)
        if nb.free(rt, c, head) != 0:
            return -1
        head = nxt
        n += 1
    return n


@numba.njit(cache=True)
def _push_many(rt, c, n):
    last = 0
    for k in range(n):
        last = nb.push_root(rt, c, k + 1)
    return last


def test_a_compiled_mutator_allocates_and_frees() -> None:
    with small_heap(gcpercent=100) as h:
        rt, c = h.runtime, h.cache()
        head = _build_list(rt, c, 10_000)
        h.after_compiled()
        assert h.read_mem_stats().num_gc >= 1  # it collected on the way, and kept the list
        assert h.lookup(head) == (head, 16)
        nb.set_shadow_depth(rt, c, 0)
        assert _free_list(rt, c, head) == 10_000
        h.check()
        assert nb.free(rt, c, head) == L.E_DOUBLE_FREE
        assert nb.free(rt, c, h.arena_used) == L.E_NOT_IN_HEAP
        assert nb.lookup(rt, c, h.arena_used + 8) == (0, 0)
        h.check()


def test_the_shadow_stack_refuses_to_overflow() -> None:
    limits = goheap.Limits(shadow_depth=4, max_threads=4)
    with small_heap(gcpercent=100, limits=limits) as h:
        rt, c = h.runtime, h.cache()
        v = View(h)
        assert _push_many(rt, c, 4) == 3
        assert nb.push_root(rt, c, 99) == -1  # full: nothing written past the row
        assert nb.shadow_depth(rt, c) == 4
        assert h._arrays.shadow[c + 1, 0] == 0
        assert nb.set_root(rt, c, 4, 7) == -1 and nb.set_root(rt, c, -1, 7) == -1
        # with no slot to protect the new block in, an allocation does not collect
        h.set_gc_percent(0)
        numgc = v.st(L.ST_NUMGC)
        p = nb.alloc(rt, c, 64)
        assert p > 0 and v.st(L.ST_NUMGC) == numgc
        nb.set_shadow_depth(rt, c, 0)
        assert nb.pop_root(rt, c) == 0 and nb.shadow_depth(rt, c) == 0  # popping an empty stack
        nb.set_shadow_depth(rt, c, 3)  # growing through set_shadow_depth is refused
        assert nb.shadow_depth(rt, c) == 0
        q = nb.alloc(rt, c, 64)
        h.after_compiled()
        assert q > 0 and v.st(L.ST_NUMGC) > numgc
        h.check()
