"""Numbers given to the public API (goheap._shell.args): ints only (numpy integers too, never a
bool), in range, else a goheap error naming the number; the heap stays as it was."""

from __future__ import annotations

import numpy as np
import pytest

import goheap
from goheap._runtime import layout as L

MB = 1 << 20
BAD = [1.5, 1.0, True, np.True_, "16", None, 2**64, -(2**64), complex(1, 0)]


@pytest.fixture
def heap():
    with goheap.Heap(arena_size=64 * MB, gcpercent=100) as h, h.scope() as s:
        h.p = s.alloc(64)
        yield h
        h.check()


def _calls(h):
    """Every public entry that takes a number, with the number as its only free argument."""
    p = h.p
    t = h.register_type("T", 16, (0,))
    k = h.roots.add(p)
    return {
        "alloc": lambda x: h.alloc(x),
        "alloc_array n": lambda x: h.alloc_array(t, x),
        "free": lambda x: h.free(x),
        "lookup": lambda x: h.lookup(x),
        "load_word p": lambda x: h.load_word(x, 0),
        "load_word i": lambda x: h.load_word(p, x),
        "store_word p": lambda x: h.store_word(x, 0, 1),
        "store_word i": lambda x: h.store_word(p, x, 1),
        "store_word value": lambda x: h.store_word(p, 0, x),
        "store_ptr value": lambda x: h.store_ptr(p, 0, x),
        "view": lambda x: h.view(x),
        "ref": lambda x: h.ref(x),
        "register_type size": lambda x: h.register_type("U", x),
        "register_type offset": lambda x: h.register_type("U", 16, (x,)),
        "type_of": lambda x: h.type_of(x),
        "set_gc_percent": lambda x: h.set_gc_percent(x),
        "set_finalizer": lambda x: h.set_finalizer(x, print),
        "read_gc_stats": lambda x: h.read_gc_stats(x),
        "set_mem_profile_rate": lambda x: h.set_mem_profile_rate(x),
        "attributing_allocations": lambda x: h.attributing_allocations(x).__enter__(),
        "profile_bucket line": lambda x: h.profile_bucket([("main.f", "f.go", x)]),
        "roots.add": lambda x: h.roots.add(x),
        "roots.set handle": lambda x: h.roots.set(x, p),
        "roots.set value": lambda x: h.roots.set(k, x),
        "roots.get": lambda x: h.roots.get(x),
        "roots.remove": lambda x: h.roots.remove(x),
        "roots.add_region address": lambda x: h.roots.add_region(x, 64),
        "roots.add_region nbytes": lambda x: h.roots.add_region(np.zeros(8, np.int64), x),
        "roots.remove_region": lambda x: h.roots.remove_region(x),
        "scope.alloc": lambda x: h.scope().__enter__().alloc(x),
        "scope.add": lambda x: h.scope().__enter__().add(x),
    }


CALLS = [
    "alloc", "alloc_array n", "free", "lookup", "load_word p", "load_word i", "store_word p", "store_word i",
    "store_word value", "store_ptr value", "view", "ref", "register_type size", "register_type offset", "type_of",
    "set_gc_percent", "set_finalizer", "read_gc_stats", "set_mem_profile_rate", "attributing_allocations",
    "profile_bucket line", "roots.add", "roots.set handle", "roots.set value", "roots.get", "roots.remove",
    "roots.add_region address", "roots.add_region nbytes", "roots.remove_region", "scope.alloc", "scope.add",
]


def test_the_table_names_every_call(heap):
    assert sorted(CALLS) == sorted(_calls(heap))


@pytest.mark.parametrize("name", CALLS)
def test_every_number_is_an_int_in_range(heap, name):
    call = _calls(heap)[name]
    before = heap.load_word(heap.p, 0), len(heap.roots)
    for bad in BAD:
        if bad is None and name == "roots.add_region nbytes":
            continue  # None: the whole buffer
        with pytest.raises(goheap.HeapError):
            call(bad)
    assert (heap.load_word(heap.p, 0), len(heap.roots)) == before


def test_numpy_integers_are_ints(heap):
    p = heap.alloc(np.int64(32))
    heap.store_word(np.uint64(p), np.int32(1), np.int64(-5))
    assert heap.load_word(p, 1) == -5 and heap.lookup(np.int64(p)) == (p, 32)
    heap.free(np.int64(p))


def test_the_audits_cases(heap):
    p = heap.p
    with pytest.raises(goheap.InvalidValue, match="does not fit in 64 bits"):
        heap.store_ptr(p, 0, 2**63)
    with pytest.raises(goheap.InvalidValue, match="must be an int, not 1.7"):
        heap.store_ptr(p, 0, 1.7)
    assert heap.load_word(p, 0) == 0  # nothing stored (1.7 used to store 1)
    for call in (heap.roots.add, heap.type_of, lambda x: heap.set_finalizer(x, print)):
        with pytest.raises(goheap.AddressError, match="outside 0..9223372036854775807"):
            call(2**64)
    with pytest.raises(goheap.AddressError, match="must be an int"):
        heap.set_finalizer(float(p), print)
    with pytest.raises(goheap.AddressError, match="must be an int"):
        heap.roots.add(1.5)
    with pytest.raises(goheap.InvalidSize, match="must be an int"):
        heap.register_type("T", size=1.5)


@pytest.mark.nojit
def test_limits_and_config_are_checked():
    with pytest.raises(goheap.ConfigError, match="gctrace_rows is 0"):
        goheap.Limits(gctrace_rows=0)
    for bad in (1.5, True, -1, 1 << 40):
        with pytest.raises(goheap.ConfigError, match="max_threads"):
            goheap.Limits(max_threads=bad)
    for field, bad in [("gcpercent", 1.5), ("gcpercent", 2**31), ("nproc", 0), ("nproc", True), ("start_time_ns", -1),
                       ("force_gc_period_ns", 1), ("scavenge_limit_ns", 2.5), ("memprofilerate", "x"),
                       ("limits", {}), ("os", "linux"), ("trace_stream", 3), ("no_such_field", 1)]:
        with pytest.raises(goheap.ConfigError, match=field):
            goheap.Heap(arena_size=64 * MB, **{field: bad})
    with pytest.raises(goheap.InvalidSize):
        goheap.Heap(arena_size=True)


def test_a_finalizer_limit_of_zero_says_so():
    with goheap.Heap(arena_size=64 * MB, limits=goheap.Limits(finalizers=0)) as h:
        p = h.alloc(16)
        with pytest.raises(goheap.OutOfMemory, match=r"0 blocks have finalizers already, the limit \(Limits.finalizers\)"):
            h.set_finalizer(p, print)
        h.check()


def test_gctrace_rows_of_one_keeps_the_last_row():
    with goheap.Heap(arena_size=64 * MB, gcpercent=100, limits=goheap.Limits(gctrace_rows=1)) as h:
        h.gc()
        h.gc()
        [row] = h.gctrace_rows()
        assert row[L.TR_NUMGC] == 2
