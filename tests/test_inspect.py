"""goheap.inspect: the read-only views agree with MemStats and with each other, and observing a run does not change it."""

from __future__ import annotations

import io

import numpy as np
import pytest

import goheap
from goheap import inspect as gi
from goheap._runtime import layout as L
from goheap.inspect import History, PageState, SpanState
from goheap.workloads import run_workload

PAGE = 4096


@pytest.fixture
def heap():
    with goheap.Heap(arena_size=64 << 20, gcpercent=100, virtual_clock=True) as h:
        yield h


def _churn(h, n=3000, seed=1):
    """Allocate objects of many classes and a few large ones, keep some alive (rooted), drop the rest."""
    rng = np.random.default_rng(seed)
    keep = []
    for i in range(n):
        size = int(rng.choice([8, 24, 100, 500, 3000, 20000, 70000], p=[0.3, 0.2, 0.2, 0.15, 0.1, 0.04, 0.01]))
        p = h.alloc(size, noscan=bool(i % 2))
        if rng.random() < 0.3:
            keep.append(h.roots.add(p))
    return keep


def test_spans_tile_the_arena_and_match_memstats(heap):
    _churn(heap)
    heap.gc()
    ms = heap.read_mem_stats()
    s = gi.spans(heap)
    assert s.dtype == gi.SPAN_DTYPE
    starts = s["start"].astype(np.int64)
    ends = starts + s["npages"] * PAGE
    assert starts[0] == heap.arena_start and ends[-1] == heap.arena_used
    assert (starts[1:] == ends[:-1]).all()  # sorted, no gaps, no overlaps
    inuse = s["state"] == SpanState.IN_USE
    assert s["npages"][inuse].sum() * PAGE == ms.heap_inuse
    assert s["npages"][~inuse].sum() * PAGE == ms.heap_idle
    small = inuse & (s["sizeclass"] > 0)
    assert (s["elemsize"][small] == heap._arrays.class_to_size[s["sizeclass"][small]]).all()
    assert (s["ref"][small] <= s["nslots"][small]).all()
    large = inuse & (s["sizeclass"] == 0)
    assert (s["elemsize"][large] == s["npages"][large] * PAGE).all() and (s["nslots"][large] == 1).all()
    assert len(gi.spans(heap, free=False)) == inuse.sum()


def test_span_records_are_the_array_as_records(heap):
    _churn(heap, 500)
    records = gi.span_records(heap)
    array = gi.spans(heap)
    assert len(records) == len(array)
    r, a = records[0], array[0]
    assert (r.start, r.npages, r.sizeclass, r.ref, r.elemsize) == tuple(int(a[k]) for k in ("start", "npages", "sizeclass", "ref", "elemsize"))
    assert isinstance(r.state, SpanState) and r.end == r.start + r.npages * PAGE


@pytest.mark.nojit
def test_size_class_table():
    t = gi.size_classes()
    assert len(t) == 60 and t.dtype == gi.SIZE_CLASS_DTYPE
    assert tuple(t[0]) == (1, 8, 1, 4096, 512, 0, 32)
    assert t["size"][-1] == 32768
    assert (t["span_bytes"] == t["objects"] * t["size"] + t["tail_waste"]).all()
    assert (t["tail_waste"] * 8 <= t["span_bytes"]).all()  # msize.c's 1/8 rule


def test_class_occupancy_matches_by_size_and_heap_alloc(heap):
    _churn(heap)
    heap.gc()
    _churn(heap, 1000, seed=2)  # some objects now sit in the cache, some spans half used
    occ = gi.class_occupancy(heap)
    ms = heap.read_mem_stats()
    for cl in range(1, 61):
        assert occ["objects"][cl] == ms.by_size[cl].mallocs - ms.by_size[cl].frees, cl
    assert occ["bytes_in_use"].sum() == ms.heap_alloc
    assert occ["bytes_in_spans"].sum() == ms.heap_inuse
    assert occ["objects"].sum() == ms.heap_objects
    small = occ[1:]
    assert (small["bytes_in_spans"] == small["bytes_in_use"] + small["free_slots"] * small["size"] + small["tail_waste"]).all()
    assert (small["cached_slots"] <= small["free_slots"]).all() and small["cached_slots"].sum() > 0
    # the free slots outside the caches are the central lists' nfree
    central = heap._arrays.central_nfree
    assert (small["free_slots"] - small["cached_slots"] == central[1:]).all()
    assert occ["objects"][0] == occ["nspans"][0] > 0 and occ["tail_waste"][0] == 0


def test_page_map_counts_are_the_heap_stats(heap):
    _churn(heap)
    heap.gc()
    pm = gi.page_map(heap)
    ms = heap.read_mem_stats()
    assert pm.dtype == np.uint8 and len(pm) == (heap.arena_used - heap.arena_start) // PAGE
    counts = np.bincount(pm, minlength=4)
    assert counts[PageState.IN_USE] * PAGE == ms.heap_inuse
    assert (counts[PageState.FREE] + counts[PageState.RELEASED]) * PAGE == ms.heap_idle
    assert counts[PageState.RELEASED] == 0 and counts[PageState.UNUSED] == 0
    # a page in use is one the span map says is in an in-use span
    a = heap._arrays
    for i in np.flatnonzero(pm == PageState.IN_USE)[::97]:
        assert a.spans[a.spanmap[i], L.SP_STATE] == SpanState.IN_USE
    released = heap.free_os_memory()
    ms = heap.read_mem_stats()
    counts = np.bincount(gi.page_map(heap), minlength=4)
    assert released > 0 and counts[PageState.RELEASED] * PAGE == ms.heap_released == ms.heap_idle
    heap.alloc(5 * PAGE)  # reuses released pages: the span counts as in use again
    counts = np.bincount(gi.page_map(heap), minlength=4)
    assert counts[PageState.RELEASED] * PAGE == heap.read_mem_stats().heap_released


def test_mem_stats_is_read_mem_stats_without_folding(heap):
    _churn(heap, 2000)
    before = heap._arrays.mstats.copy(), heap._arrays.cache_local.copy()
    peek = gi.mem_stats(heap)
    assert (heap._arrays.mstats == before[0]).all() and (heap._arrays.cache_local == before[1]).all()
    assert heap._arrays.cache_local[:, L.LC_LOCAL_CACHEALLOC].any()  # there was something to fold
    assert peek == heap.read_mem_stats()


@pytest.mark.nojit
def test_process_rss():
    assert gi.process_rss() > 1 << 20


def test_arena_rss_is_the_arenas_part_of_heap_rss():
    with goheap.Heap(arena_size=64 << 20, gcpercent=-1) as h:
        before = gi.arena_rss(h)
        keep = [h.alloc(1 << 20, noscan=True) for _ in range(8)]  # 8 MiB, each block touched
        for p in keep:
            h.view(p)[:] = 1
        arena, whole = gi.arena_rss(h), gi.heap_rss(h)
    assert arena - before >= 8 << 20
    assert arena < whole < arena + (64 << 20)  # and some metadata: hundreds of GB reserved, a little paged in


def test_snapshot_outlives_the_heap():
    with goheap.Heap(arena_size=64 << 20) as h:
        _churn(h, 500)
        snap = gi.snapshot(h)
    assert snap.mem_stats.heap_inuse == snap.page_map.counts()[PageState.IN_USE] * PAGE
    assert snap.spans["start"][0] == snap.arena_start and snap.arena_size == 64 << 20
    assert snap.occupancy["bytes_in_spans"].sum() == snap.mem_stats.heap_inuse


# ---------------------------------------------------------------- History over a workload


@pytest.fixture(scope="module")
def observed():
    history = History()
    result = run_workload("binarytrees", ["10"], gcpercent=100, gctrace=0, virtual_clock=True, on_tick=history, on_exit=history.finish)
    return history, result


def test_observing_a_run_does_not_change_it(observed):
    history, result = observed
    plain = run_workload("binarytrees", ["10"], gcpercent=100, gctrace=0, virtual_clock=True)
    assert np.array_equal(plain.gctrace, result.gctrace)
    assert plain.memstats == result.memstats


def test_history_samples(observed):
    history, result = observed
    s = history.samples
    assert len(s) == len(history) > 5 and s.dtype == gi.SAMPLE_DTYPE
    assert (np.diff(s["time_s"]) >= 0).all() and (np.diff(s["total_alloc"]) >= 0).all()
    assert (s["rss"] > 0).all()
    last = s[-1]
    ms = result.memstats
    for name in ("heap_alloc", "next_gc", "heap_sys", "heap_inuse", "total_alloc", "num_gc", "mallocs"):
        assert last[name] == getattr(ms, name), name
    assert history.final is not None and history.final.mem_stats == ms


def test_history_collections(observed):
    history, result = observed
    c = history.collections
    assert list(c["num_gc"]) == list(range(1, result.memstats.num_gc + 1))
    # gctrace off: the runtime did not measure the heap at the start; the trigger stands in
    assert not c["measured"].any() and (c["objects_before"] == -1).all()
    assert (c["heap_before"] >= c["heap_after"]).all()
    assert (c["heap_before"][1:] >= c["next_gc"][:-1]).all()
    assert (np.diff(c["total_alloc"]) >= 0).all() and (np.diff(c["time_s"]) >= 0).all()
    assert c["total_alloc"][-1] <= result.memstats.total_alloc
    assert c["next_gc"][-1] == result.memstats.next_gc
    # each collection lies between the samples taken around it
    s = history.samples
    for row in c:
        k = int(np.searchsorted(s["mallocs"], row["mallocs"]))
        assert k < len(s) and s["num_gc"][k] >= row["num_gc"]
        lo_total = s["total_alloc"][k - 1] if k else 0
        assert lo_total <= row["total_alloc"] <= s["total_alloc"][k]


def test_history_collections_measured_with_gctrace():
    history = History()
    result = run_workload("binarytrees", ["8"], gcpercent=100, gctrace=1, trace_stream=io.StringIO(), virtual_clock=True, on_tick=history)
    c = history.collections
    assert c["measured"].all()
    assert np.array_equal(c["heap_before"], result.gctrace[:, L.TR_HEAP0])
    assert np.array_equal(c["objects_before"], result.gctrace[:, L.TR_OBJ0])
    # the estimate used without gctrace is a lower bound of the measured value
    assert (c["heap_before"][1:] >= c["next_gc"][:-1]).all()


def test_history_peak_page_map(observed):
    history, _ = observed
    s = history.samples
    peak = history.peak
    assert peak is not None and peak.heap_inuse == s["heap_inuse"].max()
    assert peak.counts()[PageState.IN_USE] * PAGE == peak.heap_inuse
    assert history.final.page_map.counts()[PageState.IN_USE] * PAGE == history.final.mem_stats.heap_inuse


@pytest.mark.nojit
def test_history_last_sample(observed):
    history, _ = observed
    assert history.last_sample == history.samples[-1]


def test_history_without_samples_is_empty():
    h = History()
    assert len(h.samples) == 0 and len(h.collections) == 0 and h.peak is None


def test_exported_from_the_package():
    assert goheap.__all__ == sorted(goheap.__all__)
    for name in ("History", "HeapSnapshot", "PageMapSnapshot", "PageState", "Span", "SpanState", "inspect"):
        assert name in goheap.__all__
    assert goheap.History is gi.History and goheap.History.__module__ == "goheap"

