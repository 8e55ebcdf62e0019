"""The parallel for (goheap._runtime.gc.parfor), one step at a time, against the seed's protocol by hand."""

from __future__ import annotations

import pytest

from goheap._runtime import layout as L
from goheap._runtime.gc import parfor as P

D = L.PARFOR_SWEEP


def thr(heap, tid, field):
    return int(heap._arrays.parfor[D, L.PF_NSLOTS + tid * L.PFT_NSLOTS + field])


def desc(heap, field):
    return int(heap._arrays.parfor[D, field])


@pytest.mark.parametrize("nthr,cnt", [(1, 7), (3, 10), (4, 3), (8, 1000), (5, 0)])
def test_setup_splits_cnt_i_over_nthr(heap, nthr, cnt):
    P.parforsetup(heap.runtime, D, nthr, cnt, True)
    for i in range(nthr):
        assert (thr(heap, i, L.PFT_BEGIN), thr(heap, i, L.PFT_END)) == (cnt * i // nthr, cnt * (i + 1) // nthr)


def test_one_thread_runs_everything_in_order(heap):
    rt = heap.runtime
    P.parforsetup(rt, D, 1, 4, True)
    steps = [P.parfor_step(rt, D, 0, 0) for _ in range(5)]
    assert steps == [(P.PF_BODY, 0), (P.PF_BODY, 1), (P.PF_BODY, 2), (P.PF_BODY, 3), (P.PF_EXIT, 0)]
    assert desc(heap, L.PF_NSTEAL) == 0


@pytest.mark.nojit
def test_steal_takes_the_back_half(heap):
    rt = heap.runtime
    P.parforsetup(rt, D, 2, 12, True)  # [0, 6) and [6, 12)
    assert [P.parfor_step(rt, D, 1, 1) for _ in range(6)] == [(P.PF_BODY, i) for i in range(6, 12)]
    # thread 1 is out of work; its only victim is thread 0, which has [0, 6): it takes [3, 6)
    assert P.parfor_step(rt, D, 1, 1) == (P.PF_TRIED, P.BACKOFF_STOLE)
    assert (thr(heap, 0, L.PFT_BEGIN), thr(heap, 0, L.PFT_END)) == (0, 3)
    assert (thr(heap, 1, L.PFT_BEGIN), thr(heap, 1, L.PFT_END)) == (3, 6)
    assert [P.parfor_step(rt, D, 1, 1) for _ in range(3)] == [(P.PF_BODY, i) for i in (3, 4, 5)]
    assert thr(heap, 1, L.PFT_NSTEAL) == 1 and thr(heap, 1, L.PFT_NSTEALCNT) == 3
    # thread 0 runs [0, 3); now [0, 1) left: one iteration cannot be stolen
    assert P.parfor_step(rt, D, 0, 0) == (P.PF_BODY, 0)
    assert P.parfor_step(rt, D, 0, 0) == (P.PF_BODY, 1)
    assert P.parfor_step(rt, D, 1, 1) == (P.PF_TRIED, P.BACKOFF_NONE)  # [2, 3): begin+1 >= end


def _exhaust(heap, wait):
    """Two threads with nothing to steal from each other: thread 0 tries until it leaves or 40 tries."""
    rt = heap.runtime
    P.parforsetup(rt, D, 2, 1, wait)  # thread 0: [0, 0), thread 1: [0, 1)
    out = []
    for _ in range(40):
        act, v = P.parfor_step(rt, D, 0, 0)
        out.append(v if act == P.PF_TRIED else "exit")
        if act == P.PF_EXIT:
            break
    return out


def test_backoff_without_wait_leaves_after_4nthr_tries(heap):
    out = _exhaust(heap, False)
    # tries 0-1 nothing, 2-7 procyield, try 8: not waiting for the others, so leave
    assert out == [P.BACKOFF_NONE] * 2 + [P.BACKOFF_PROCYIELD] * 6 + ["exit"]
    assert desc(heap, L.PF_NPROCYIELD) == 6 and desc(heap, L.PF_DONE) == 1


def test_backoff_with_wait_goes_idle_and_sleeps(heap):
    out = _exhaust(heap, True)
    # tries 2-7 procyield, 8-11 osyield, then usleep(1); idle (done += 1) from try 9 on
    assert out == [P.BACKOFF_NONE] * 2 + [P.BACKOFF_PROCYIELD] * 6 + [P.BACKOFF_OSYIELD] * 4 + [P.BACKOFF_USLEEP] * 28
    assert desc(heap, L.PF_DONE) == 1 and thr(heap, 0, L.PFT_IDLE) == 1
    # thread 1 runs its iteration; out of work, it sees thread 0 idle and leaves at its first try
    rt = heap.runtime
    assert P.parfor_step(rt, D, 1, 1) == (P.PF_BODY, 0)
    assert P.parfor_step(rt, D, 1, 1) == (P.PF_EXIT, 0)
    assert desc(heap, L.PF_DONE) == 2
    assert P.parfor_step(rt, D, 0, 0) == (P.PF_EXIT, 0)  # everybody idle: done
    # the threads' counts were added to the descriptor as they left
    assert (desc(heap, L.PF_NPROCYIELD), desc(heap, L.PF_NOSYIELD), desc(heap, L.PF_NSLEEP)) == (6, 4, 28)
