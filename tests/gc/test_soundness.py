"""Soundness of the collector against a reference model, by hypothesis.

Random object graphs (cycles, interior pointers, typed and untyped objects, noscan objects
full of pointer-looking data, large and small), random root changes (handles, a
conservative region, a precise region) and random finalizers (some resurrecting their
object), with collections both explicit and triggered by allocation. After every
operation that collected:

* every object the model says is reachable is allocated and holds exactly the words the
  model wrote (a cookie in word 0, its pointers and data);
* every object the model says is unreachable was freed by that operation: a collection
  frees it at once or, if it has a finalizer, runs the finalizer and the runner's own
  collection frees it (unless the finalizer resurrected it);
* ``Heap.check()`` passes.

The model knows every word it wrote and every object's block, and derives the edges from
them as the seed's collector does: every word of an untyped block, the pointer words of
a typed one, none of a noscan one; a finalizer object's contents are roots (scanned
through its span type, so a noscan one conservatively: the seed's addfinroots). Nothing
else is written, so marking is exact and the model can say precisely what dies.
"""

from __future__ import annotations

import bisect

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, precondition, rule

import goheap
from goheap._runtime import layout as L
from gcutil import is_live

COOKIE = 0x7E57 << 48  # far above any arena address
SIZES = [16, 24, 48, 112, 520, 4000, 40000, 70000]
REGION_WORDS = 16
RES_WORDS = 64


class Obj:
    __slots__ = ("addr", "fin", "id", "kind", "nwords", "ptr_words", "size", "words")

    def __init__(self, oid, addr, size, kind, ptr_words):
        self.id = oid
        self.addr = addr
        self.size = size  # the block's size
        self.nwords = size // 8
        self.kind = kind  # "untyped", "typed" or "noscan"
        self.ptr_words = ptr_words  # typed: the words its type says hold pointers
        self.words: dict[int, int] = {0: COOKIE | oid}  # every non-zero word
        self.fin = None  # None, "plain" or "resurrect"

    def scanned(self, i: int) -> bool:
        return self.kind == "untyped" or (self.kind == "typed" and i in self.ptr_words)


class HeapModel(RuleBasedStateMachine):
    objs = Bundle("objs")

    @initialize(nproc=st.sampled_from([1, 1, 3]), percent=st.sampled_from([0, 25, 100]))
    def setup(self, nproc, percent):
        self.h = goheap.Heap(arena_size=64 << 20, gcpercent=percent, gctrace=0, nproc=nproc, memprofilerate=0)
        self.types = [self.h.register_type("T1", 32, (8, 24)), self.h.register_type("T2", 64, (16,))]
        self.live: dict[int, Obj] = {}
        self.starts: list[int] = []  # sorted block starts of live objects
        self.by_start: dict[int, Obj] = {}
        self.next_id = 1
        self.handles: dict[int, int] = {}  # handle -> the word it holds
        self.region = np.zeros(REGION_WORDS, np.int64)  # conservative
        self.precise = np.zeros(REGION_WORDS, np.int64)  # only even words are pointers
        self.res = np.zeros(RES_WORDS, np.int64)  # where resurrecting finalizers store their object
        self.h.roots.add_region(self.region)
        self.h.roots.add_region(self.precise, pointer_bitmap=[i % 2 == 0 for i in range(REGION_WORDS)])
        self.h.roots.add_region(self.res)
        self.finalized: list[int] = []  # object ids, as the finalizers ran
        self.res_expect: set[int] = set()
        self.dead: list[Obj] = []
        self.expected_finalized: list[int] = []

    def teardown(self):
        if hasattr(self, "h"):
            self.h.close()

    # ------------------------------------------------------------ the model's collector

    def _obj_at(self, v: int) -> Obj | None:
        k = bisect.bisect_right(self.starts, v) - 1
        if k >= 0:
            o = self.by_start[self.starts[k]]
            if v < o.addr + o.size:
                return o
        return None

    def _refs(self, o: Obj, all_words: bool = False):
        for i, v in o.words.items():
            if all_words or o.scanned(i):
                t = self._obj_at(v)
                if t is not None:
                    yield t.id

    def _root_words(self):
        yield from self.handles.values()
        yield from (int(x) for x in self.region)
        yield from (int(x) for i, x in enumerate(self.precise) if i % 2 == 0)
        yield from self.res_expect  # the resurrection slots as the model expects them

    def _mark(self, extra):
        seen = set()
        stack = [t.id for t in map(self._obj_at, self._root_words()) if t is not None] + list(extra)
        while stack:
            oid = stack.pop()
            if oid not in seen:
                seen.add(oid)
                stack.extend(self._refs(self.live[oid]))
        return seen

    def _collected(self):
        """Collections ran: apply them (and the finalizer runner's) to the model."""
        while True:
            fins = [o for o in self.live.values() if o.fin]
            # a finalizer object's contents are roots (per its span type: untyped/noscan
            # blocks conservatively), the object itself is not
            marked = self._mark(t for f in fins for t in self._refs(f, all_words=f.kind != "typed"))
            found = [f for f in fins if f.id not in marked]
            for o in list(self.live.values()):
                if o.id not in marked and o.fin is None:
                    self._free(o)
            if not found:
                return
            for f in found:  # kept one more cycle; its finalizer runs; the runner collects again
                self.expected_finalized.append(f.id)
                resurrect = f.fin == "resurrect"
                f.fin = None
                if resurrect:
                    self.res_expect.add(f.addr)

    def _free(self, o: Obj):
        del self.live[o.id]
        self.starts.remove(o.addr)
        del self.by_start[o.addr]
        self.dead.append(o)

    def _begin(self):
        self.dead = []
        self.expected_finalized = []
        self.res_expect = {int(x) for x in self.res if x}
        self.n_finalized = len(self.finalized)
        self.gc0 = int(self.h._arrays.mstats[L.ST_NUMGC])

    def _end(self):
        if int(self.h._arrays.mstats[L.ST_NUMGC]) == self.gc0:
            assert len(self.finalized) == self.n_finalized
            return
        self._collected()
        assert sorted(self.finalized[self.n_finalized :]) == sorted(self.expected_finalized)
        assert {int(x) for x in self.res if x} == self.res_expect
        self._verify()

    # ------------------------------------------------------------ operations

    @rule(target=objs, size=st.sampled_from(SIZES), kind=st.sampled_from(["untyped", "untyped", "noscan", "typed"]),
          which=st.sampled_from([0, 1]), n=st.sampled_from([0, 0, 3, 5]), link=st.integers(0, 1 << 20))
    def alloc(self, size, kind, which, n, link):
        """A new object, then (usually) a pointer to it from a root or from a scanned word of an object."""
        if kind == "typed" and len(self.live) % 4 == 0:
            n = 0  # keep some single typed objects
        t = self.types[which]
        self._begin()
        if kind == "typed":
            addr = self.h.alloc_array(t, n) if n else self.h.alloc(t.size, type=t)
        else:
            addr = self.h.alloc(size, noscan=kind == "noscan")
        self._end()
        base, block = self.h.lookup(addr)
        assert base == addr
        ptr_words = set()
        if kind == "typed":
            nelem = block // t.size if n else 1
            ptr_words = {(e * t.size + off) // 8 for e in range(nelem) for off in t.pointer_offsets}
        o = Obj(self.next_id, addr, block, kind, ptr_words)
        self.next_id += 1
        self.h.store_word(addr, 0, COOKIE | o.id)
        self.live[o.id] = o
        bisect.insort(self.starts, addr)
        self.by_start[addr] = o
        holders = [x for x in self.live.values() if x is not o and any(x.scanned(i) for i in range(1, x.nwords))]
        if link % 4 == 1 or (link % 4 >= 2 and not holders):
            self.handles[self.h.roots.add(addr)] = addr
        elif link % 4 >= 2:
            x = holders[link // 4 % len(holders)]
            words = [i for i in range(1, x.nwords) if x.scanned(i)]
            self._store(x, words[link // 16 % len(words)], addr + 8 * (link % 3))
        return o.id

    def _target(self, oid: int, off: int) -> int:
        o = self.live[oid]
        return o.addr + (off % o.size) // 8 * 8

    def _store(self, o: Obj, i: int, v: int):
        self.h.store_word(o.addr, i, v)
        if v:
            o.words[i] = v
        else:
            o.words.pop(i, None)

    @rule(src=objs, dst=objs, slot=st.integers(0, 1 << 20), off=st.integers(0, 1 << 20), fake=st.booleans())
    def store(self, src, dst, slot, off, fake):
        """A pointer where the collector looks, or pointer-looking data where it does not."""
        s, d = self.live.get(src), self.live.get(dst)
        if s is None or d is None:
            return
        words = [i for i in range(1, s.nwords) if s.scanned(i) != fake]
        if words:
            self._store(s, words[slot % len(words)], self._target(dst, off if off % 3 else 0))

    @rule(src=objs, slot=st.integers(0, 1 << 20))
    def clear(self, src, slot):
        s = self.live.get(src)
        if s is not None and s.nwords > 1:
            self._store(s, 1 + slot % (s.nwords - 1), 0)

    @rule(dst=objs, off=st.integers(0, 1 << 20))
    def add_handle(self, dst, off):
        if dst in self.live:
            v = self._target(dst, off)
            self.handles[self.h.roots.add(v)] = v

    @precondition(lambda self: self.handles)
    @rule(pick=st.integers(0, 1 << 20))
    def remove_handle(self, pick):
        k = sorted(self.handles)[pick % len(self.handles)]
        self.h.roots.remove(k)
        del self.handles[k]

    @rule(dst=objs, slot=st.integers(0, REGION_WORDS - 1), off=st.integers(0, 1 << 20), precise=st.booleans())
    def store_region(self, dst, slot, off, precise):
        if dst in self.live:
            (self.precise if precise else self.region)[slot] = self._target(dst, off)

    @rule(slot=st.integers(0, RES_WORDS - 1), which=st.sampled_from(["region", "precise", "res"]))
    def clear_region(self, slot, which):
        arr = getattr(self, which)
        arr[slot % arr.shape[0]] = 0

    @rule(dst=objs, resurrect=st.booleans())
    def set_finalizer(self, dst, resurrect):
        o = self.live.get(dst)
        if o is None or o.fin:
            return
        pending = sum(1 for x in self.live.values() if x.fin == "resurrect")
        if int(np.count_nonzero(self.res)) + pending >= RES_WORDS:
            resurrect = False  # no free slot would be left for it

        def fin(p, oid=dst):
            self.finalized.append(oid)
            if resurrect:
                self.res[int(np.flatnonzero(self.res == 0)[0])] = p

        self.h.set_finalizer(o.addr, fin)
        o.fin = "resurrect" if resurrect else "plain"

    @rule()
    def collect(self):
        self._begin()
        assert self.h.gc()
        self._end()

    # ------------------------------------------------------------ checks

    def _verify(self):
        h = self.h
        for o in self.live.values():
            assert is_live(h, o.addr), f"object {o.id} ({o.kind}, {o.size} B) at {o.addr:#x} freed while reachable"
            got = h.view(o.addr, np.int64)
            assert {int(i): int(got[i]) for i in np.flatnonzero(got)} == o.words, f"object {o.id} was overwritten"
        for o in self.dead:
            # freed, or reused since (by the allocation that collected, or by the runtime's own
            # blocks: span type arrays, finalizer tables), so no longer this object
            kept = is_live(h, o.addr) and h.lookup(o.addr) == (o.addr, o.size) and h.load_word(o.addr, 0) == COOKIE | o.id
            assert not kept, f"object {o.id} at {o.addr:#x} survived a collection unreachable"
        h.check()

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
HeapModel.TestCase.settings = settings(max_examples=60, stateful_step_count=50, **SETTINGS)
test_soundness = HeapModel.TestCase


@pytest.mark.slow
def test_soundness_long():
    class Long(HeapModel):
        pass

    Long.TestCase.settings = settings(max_examples=300, stateful_step_count=150, **SETTINGS)
    Long.TestCase("runTest").runTest()
