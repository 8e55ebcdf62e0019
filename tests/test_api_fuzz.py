"""A hypothesis fuzz over the whole public API: random calls with random arguments.

Arguments are drawn from what misuse looks like: live blocks and addresses inside them,
freed blocks, foreign memory (a numpy buffer), the arena's edges, huge and negative ints,
floats, bools, strings, None; registered types, another heap's types and forged ones; and,
at some point, a closed heap. The only exceptions allowed are goheap's, and after every
step ``Heap.check()`` passes (while the heap is open).
"""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import goheap
from goheap import nb

MB = 1 << 20
FOREIGN = np.zeros(64, np.int64)  # memory the heap does not own


class PublicAPI(RuleBasedStateMachine):
    @initialize(percent=st.sampled_from([-1, 0, 50]))
    def setup(self, percent):
        self.h = goheap.Heap(arena_size=16 * MB, gcpercent=percent, memprofilerate=0, virtual_clock=True)
        self.other = goheap.Heap(arena_size=16 * MB)
        self.scope = self.h.scope().__enter__()
        self.types = [self.h.register_type("T", 24, (0, 16))]
        self.foreign_types = [self.other.register_type("F", 16, (0,)), goheap.TypeInfo(1, "T", 24, (0, 8))]
        self.live: list[int] = []
        self.sizes: dict[int, int] = {}
        self.freed: list[int] = []
        self.refs: list[goheap.Ref] = []
        self.handles: list[int] = []
        self.regions: list[int] = []

    def teardown(self):
        if hasattr(self, "h"):
            self.h.close()
            self.other.close()

    # ------------------------------------------------------------ arguments

    def _number(self, data):
        """An int-ish argument: mostly an address of this heap's, else anything."""
        h = self.h
        edges = []
        if not h.closed:
            edges = [h.arena_start - 8, h.arena_used, h.arena_end]
        # Addresses in the fuzz's blocks are drawn from blocks its scope roots, and freed ones
        # only while still free: a computed or stale address could reach the runtime's own
        # blocks (span type arrays, finalizer tables), which free and the accessors accept
        # (Departure 9 of the overview essay).
        inside = [p + k for p in self.live for k in (1, 7, 8, 9, self.sizes[p] - 8, self.sizes[p] - 1) if 0 < k < self.sizes[p]]
        if not h.closed:
            self.freed = [p for p in self.freed if not self._allocated(p)]
        choices = (
            [st.sampled_from(self.live)] * 3 * bool(self.live)
            + [st.sampled_from(inside)] * bool(inside)
            + [st.sampled_from(self.freed)] * bool(self.freed)
            + [st.sampled_from(edges)] * bool(edges)
            + [
                st.just(int(FOREIGN.ctypes.data)),
                st.integers(-(2**65), 2**65),
                st.integers(0, 1 << 16),
                st.sampled_from([0, 1, -1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1]),
                st.sampled_from([1.5, 2.0, True, False, None, "8", np.int64(16), np.float64(8.0), np.True_]),
            ]
        )
        return data.draw(st.one_of(*choices))

    def _allocated(self, p: int) -> bool:
        try:
            self.h.lookup(p)
        except goheap.AddressError:
            return False
        return True

    def _type(self, data):
        return data.draw(st.sampled_from(self.types + self.foreign_types + [None, "T", 3]))

    def _call(self, fn, *args, **kwargs):
        """Call the API: a goheap error is fine (misuse), anything else fails the test."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", goheap.FinalizerWarning)
            try:
                return fn(*args, **kwargs)
            except goheap.HeapError:
                return None

    # ------------------------------------------------------------ rules

    @rule(data=st.data(), scoped=st.booleans(), noscan=st.booleans(), nogc=st.booleans())
    def alloc(self, data, scoped, noscan, nogc):
        size = data.draw(st.one_of(st.integers(0, 70000), st.sampled_from([16, 48, 1 << 40, -1, 1.5, True, "16"])))
        t = self._type(data) if data.draw(st.booleans()) else None
        fn = self.scope.alloc if scoped else self.h.alloc
        p = self._call(fn, size, type=t, noscan=noscan, nogc=nogc)
        if p is not None and (scoped or nogc):  # what nothing roots may be collected and its slot reused
            self.live.append(p)
            self.sizes[p] = self.h.lookup(p)[1]

    def _forget_freed(self, p) -> None:
        if p in self.live and not self.h.closed and not self._allocated(p):
            self.live.remove(p)
            self.freed.append(p)

    @rule(data=st.data())
    def free(self, data):
        p = self._number(data)
        self._call(self.h.free, p)
        self._forget_freed(p)

    @rule(data=st.data())
    def access(self, data):
        p, i, q = self._number(data), data.draw(st.one_of(st.integers(-2, 9000), st.just(1.5))), self._number(data)
        which = data.draw(st.sampled_from(["load_word", "store_word", "load_ptr", "store_ptr", "lookup", "view", "type_of"]))
        fn = getattr(self.h, which)
        if which.startswith("store"):
            self._call(fn, p, i, q)
        elif which.startswith("load"):
            self._call(fn, p, i)
        elif which == "view":
            self._call(fn, p, data.draw(st.sampled_from([np.uint8, np.int64, np.float32, object, "i16", 3])))
        else:
            self._call(fn, p)

    @rule(data=st.data())
    def roots(self, data):
        r = self.h.roots
        which = data.draw(st.sampled_from(["add", "set", "get", "remove", "ref", "release", "region", "unregion", "clear", "scope_add"]))
        handle = data.draw(st.one_of(st.sampled_from(self.handles or [0]), st.integers(-5, 5), st.just(1.5)))
        if which == "add":
            k = self._call(r.add, self._number(data))
            if k is not None:
                self.handles.append(k)
        elif which == "set":
            self._call(r.set, handle, self._number(data))
        elif which == "get":
            self._call(r.get, handle)
        elif which == "remove":
            self._call(r.remove, handle)
        elif which == "ref":
            ref = self._call(self.h.ref, self._number(data))
            if ref is not None:
                self.refs.append(ref)
        elif which == "release" and self.refs:
            self.refs.pop(data.draw(st.integers(0, len(self.refs) - 1))).release()
        elif which == "region":
            region = data.draw(st.sampled_from([np.zeros(4, np.int64), bytearray(16), b"xy", "text", 5]))
            k = self._call(r.add_region, region, data.draw(st.sampled_from([None, 8, 100, -1])))
            if k is not None:
                self.regions.append(k)
        elif which == "unregion":
            self._call(r.remove_region, data.draw(st.sampled_from(self.regions + [99, -1, "x"])))
        elif which == "clear":
            self._call(r.clear)
        else:
            self._call(self.scope.add, self._number(data))

    @rule(data=st.data())
    def collector(self, data):
        h = self.h
        which = data.draw(st.sampled_from(["gc", "percent", "finalizer", "unfinalizer", "clock", "tick", "freeos", "stats", "profile"]))
        if which == "gc":
            self._call(h.gc)
        elif which == "percent":
            self._call(h.set_gc_percent, data.draw(st.sampled_from([-1, 0, 100, 2**40, 1.5])))
        elif which == "finalizer":
            self._call(h.set_finalizer, self._number(data), data.draw(st.sampled_from([lambda p: None, lambda p: 1 / 0, 7])))
        elif which == "unfinalizer":
            self._call(h.set_finalizer, self._number(data), None)
        elif which == "clock":
            self._call(h.advance_clock, data.draw(st.sampled_from([0, 10**9, 60 * 10**9, 10**15, -1, 2**63, 0.5])))
        elif which == "tick":
            self._call(h.scavenger_tick)
        elif which == "freeos":
            self._call(h.free_os_memory)
        elif which == "stats":
            self._call(h.read_mem_stats)
            self._call(h.read_gc_stats, data.draw(st.sampled_from([0, 4, -1, 1.5])))
        else:
            self._call(h.set_mem_profile_rate, data.draw(st.sampled_from([0, 1, 512 << 10, -5, 1.5])))

    @rule(data=st.data())
    def types(self, data):
        size = data.draw(st.sampled_from([8, 16, 24, 0, -8, 1.5, 1 << 50]))
        offsets = data.draw(st.sampled_from([(), (0,), (8,), (3,), (0, 1.5), "ab", 5]))
        t = self._call(self.h.register_type, "R", size, offsets)
        if t is not None:
            self.types.append(t)
        self._call(self.h.alloc_array, self._type(data), data.draw(st.sampled_from([0, 2, -1, 1.5, 2**60])))

    @rule(data=st.data())
    def compiled_api_from_python(self, data):
        h = self.h
        if h.closed:
            return
        rt, c = h.runtime, h.cache()
        which = data.draw(st.sampled_from(["load", "store", "load_byte", "store_byte", "alloc", "free", "lookup", "stack"]))
        a = self._number(data)
        if which == "load":
            self._call(nb.load, rt, a)
        elif which == "store":
            self._call(nb.store, rt, a, self._number(data))
        elif which == "load_byte":
            self._call(nb.load_byte, rt, a)
        elif which == "store_byte":
            self._call(nb.store_byte, rt, a, data.draw(st.integers(-1, 300)))
        elif which == "alloc":
            self._call(nb.alloc, rt, data.draw(st.sampled_from([c, c + 1, -1, 10**6])), data.draw(st.sampled_from([16, -1, 1 << 40])))
        elif which == "free":
            self._call(nb.free, rt, c, a)
            self._forget_freed(a)
        elif which == "lookup":
            self._call(nb.lookup, rt, c, a)
        else:  # above the scope's roots, or outside the stack
            self._call(nb.stack_store, rt, c, data.draw(st.sampled_from([-1, 1 << 15, (1 << 16) - 1, 1 << 16, 1 << 40])), a)

    @rule()
    def close(self):
        self.scope.__exit__(None, None, None)
        self.h.close()

    @invariant()
    def intact(self):
        if hasattr(self, "h") and not self.h.closed:
            self.h.check()


PublicAPI.TestCase.settings = settings(
    max_examples=40, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
test_public_api = PublicAPI.TestCase
