"""Random allocation, freeing and lookups against a reference model (hypothesis stateful).

Three caches take part, as three threads' would: the heap's own (through the Python API) and
two more made with the runtime's ``new_cache`` entry point. The model is a dict of live
blocks. Every block must come back zeroed, must not overlap another, is filled with a cookie
pattern derived from its address, and must still hold it when freed. ``check()`` runs
after every step. The collector is off: nothing here is reachable from a root. The machine
runs under every policy preset (size classes, page size): the model does not change.
"""

from __future__ import annotations

import bisect

import numpy as np
import pytest
from heaptools import alloc_sizes, pattern, small_heap
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from goheap._runtime import entry
from goheap.policy import PRESETS

MB = 1 << 20
BUDGET = 48 * MB  # live bytes kept under this, in a 128 MB arena


class HeapMachine(RuleBasedStateMachine):
    policy = "seed"

    def __init__(self):
        super().__init__()
        self.heap = small_heap(arena_size=128 * MB, policy=self.policy)
        h = self.heap._handle
        self.caches = [self.heap.cache()] + [int(entry.new_cache(h)) for _ in range(2)]
        self.live: dict[int, int] = {}  # address -> block size
        self.starts: list[int] = []  # the live addresses, sorted
        self.live_bytes = 0

    def teardown(self):
        self.heap.close()

    # ---------------------------------------------------------------- operations

    def _alloc(self, k: int, size: int) -> int:
        if k == 0:
            return self.heap.alloc(size)
        v = int(entry.alloc(self.heap._handle, self.caches[k], size, 0, True))
        assert v > 0, f"alloc({size}) in cache {self.caches[k]} failed with {v}"
        return v

    def _free(self, k: int, p: int) -> None:
        if k == 0:
            self.heap.free(p)
        else:
            assert int(entry.free(self.heap._handle, self.caches[k], p)) == 0

    @rule(size=alloc_sizes(2 * MB), k=st.integers(0, 2))
    def alloc(self, size, k):
        if self.live_bytes + size > BUDGET:
            return
        p = self._alloc(k, size)
        base, n = self.heap.lookup(p)
        assert base == p and n >= max(size, 1)
        assert p not in self.live
        i = bisect.bisect(self.starts, p)
        if i > 0:
            prev = self.starts[i - 1]
            assert prev + self.live[prev] <= p, f"{p:#x} overlaps the block at {prev:#x}"
        if i < len(self.starts):
            assert p + n <= self.starts[i], f"{p:#x}+{n} overlaps the block at {self.starts[i]:#x}"
        words = self.heap.view(p, np.int64)
        assert not words.any(), f"block {p:#x} of {n} bytes came back dirty"
        words[:] = pattern(p, n)
        self.starts.insert(i, p)
        self.live[p] = n
        self.live_bytes += n

    @precondition(lambda self: self.live)
    @rule(data=st.data(), k=st.integers(0, 2))
    def free(self, data, k):
        p = data.draw(st.sampled_from(self.starts))
        n = self.live.pop(p)
        assert np.array_equal(self.heap.view(p, np.int64), pattern(p, n)), f"block {p:#x} was overwritten"
        self._free(k, p)
        self.starts.remove(p)
        self.live_bytes -= n

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def lookup_interior(self, data):
        p = data.draw(st.sampled_from(self.starts))
        n = self.live[p]
        off = data.draw(st.integers(0, n - 1))
        assert self.heap.lookup(p + off) == (p, n)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free_everything_of_one_size(self, data):
        n = data.draw(st.sampled_from(sorted(set(self.live.values()))))
        for p in [q for q, m in self.live.items() if m == n]:
            self._free(0, p)
            del self.live[p]
            self.starts.remove(p)
            self.live_bytes -= n

    # ---------------------------------------------------------------- invariants

    @invariant()
    def heap_is_sound(self):
        self.heap.check()

    @invariant()
    def stats_agree_with_the_model(self):
        st_ = self.heap.read_mem_stats()
        assert st_.heap_objects == len(self.live)
        assert st_.heap_alloc == self.live_bytes
        assert st_.heap_sys == st_.heap_idle + st_.heap_inuse


def _run(max_examples: int, steps: int, policy: str = "seed") -> None:
    machine = type(f"HeapMachine_{policy}", (HeapMachine,), {"policy": policy})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )


@pytest.mark.nojit
@pytest.mark.parametrize("policy", list(PRESETS))
def test_random_operations_against_a_model(policy: str) -> None:
    _run(max_examples=25 if policy == "seed" else 10, steps=30, policy=policy)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["seed", "modern"])  # modern: Go's classes on 8 KB pages
def test_random_operations_against_a_model_at_length(policy: str) -> None:
    _run(max_examples=120, steps=60, policy=policy)
