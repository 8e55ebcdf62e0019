"""goheap.nb.checked (goheap/_jit_checked.py): the compiled API with every argument validated, and
goheap.nb's functions running it when called from plain Python."""

from __future__ import annotations

import pickle

import numba
import pytest

import goheap
from goheap import nb

MB = 1 << 20


@numba.njit
def _fill(rt, p, n):
    for i in range(n):
        nb.checked.store(rt, p + 8 * i, i)
    return nb.checked.load(rt, p + 8 * (n - 1))


@pytest.fixture
def heap():
    with goheap.Heap(arena_size=64 * MB, gcpercent=-1) as h:
        yield h
        h.check()


def test_a_mutator_compiled_against_the_checked_api_raises_inside_compiled_code(heap):
    with heap.scope() as s:
        p = s.alloc(64)
        assert _fill(heap.runtime, p, 8) == 7
        with pytest.raises(goheap.AddressError, match=f"8 bytes at {p + 64:#x}|{p + 64:#x} is not in an allocated block"):
            _fill(heap.runtime, p, 9)  # one word past the block
        q = s.alloc(64)
        heap.free(q)
        with pytest.raises(goheap.AddressError, match=f"{q:#x} is not in an allocated block"):
            _fill(heap.runtime, q, 1)


def test_the_checked_functions_do_what_the_fast_ones_do(heap):
    rt, c = heap.runtime, heap.cache()
    p = nb.checked.alloc(rt, c, 32)
    assert nb.checked.lookup(rt, c, p + 5) == (p, 32)
    nb.checked.store_byte(rt, p + 3, 255)
    assert nb.checked.load_byte(rt, p + 3) == 255
    assert nb.checked.push_root(rt, c, p) >= 0 and nb.checked.pop_root(rt, c) == p
    t = heap.register_type("T", 16, (0,))
    q = nb.checked.alloc_typed(rt, c, 16, t.id, False)
    heap.after_compiled()
    assert heap.type_of(q) == t
    assert nb.checked.free(rt, c, p) == 0 and nb.checked.free(rt, c, p) < 0  # a double free is still a code
    for bad in (lambda: nb.checked.store_byte(rt, q, 256), lambda: nb.checked.alloc_typed(rt, c, 16, 99, False),
                lambda: nb.checked.stack_load(rt, c, -1), lambda: nb.checked.set_profile_bucket(rt, -1),
                lambda: nb.checked.gc(rt, c + 1), lambda: nb.checked.store(rt, q + 4, 1)):
        with pytest.raises(goheap.HeapError):
            bad()


def test_nb_from_python_checks_argument_types(heap):
    rt, c = heap.runtime, heap.cache()
    with heap.scope() as s:
        p = s.alloc(16)
        nb.store(rt, p, 5)
        assert nb.load(rt, p) == 5 and nb.lookup(rt, c, p) == (p, 16)
        for call, match in [
            (lambda: nb.store(rt, p, 1.5), "value must be an int"),
            (lambda: nb.store(rt, p, 2**64), "does not fit in 64 bits"),
            (lambda: nb.load(heap, p), "is not a heap's runtime"),
            (lambda: nb.load(rt), "missing"),
            (lambda: nb.alloc(rt, True, 16), "c must be an int"),
        ]:
            with pytest.raises(goheap.HeapError, match=match):
                call()


def test_nb_functions_pickle_by_name():
    assert pickle.loads(pickle.dumps(nb.store)) is nb.store
    assert pickle.loads(pickle.dumps(nb.checked.load)) is nb.checked.load
