"""The parallel for of parfor.c, one step at a time. See :mod:`goheap._runtime.gc` for the phases.

A ParFor splits ``cnt`` iterations among ``nthr`` threads: thread i starts with
[cnt*i/nthr, cnt*(i+1)/nthr). A thread takes its own iterations from the front; out of
work, it steals the back half of a random victim's range (a victim with at least 2 left),
and backs off between failed tries: nothing for the first nthr tries, procyield up to
4*nthr, then (if the caller does not wait for the others) it leaves; otherwise osyield up
to 6*nthr and usleep(1) after. After 4*nthr failed tries it counts itself idle; when all
threads are idle the loop ends. Steals and yields are counted per thread and added to the
descriptor when the thread leaves.

:func:`parfor_step` runs one thread for one step (an iteration handed to the caller, or one
try of the steal loop), so that ``gchelper.py`` can interleave several threads
deterministically. Each step is atomic, so the seed's CAS on a victim's range never fails.
"""

from __future__ import annotations

from .._jit import jit
from ..layout import (
    GP_FASTRAND,
    H_FASTRAND,
    PF_CNT,
    PF_DONE,
    PF_NOSYIELD,
    PF_NPROCYIELD,
    PF_NSLEEP,
    PF_NSLOTS,
    PF_NSTEAL,
    PF_NSTEALCNT,
    PF_NTHR,
    PF_THRSEQ,
    PF_WAIT,
    PFT_BEGIN,
    PFT_END,
    PFT_IDLE,
    PFT_NOSYIELD,
    PFT_NPROCYIELD,
    PFT_NSLEEP,
    PFT_NSLOTS,
    PFT_NSTEAL,
    PFT_NSTEALCNT,
    PFT_STEALING,
    PFT_TRY,
)

# what a step did
PF_BODY = 0  # run the body for the returned iteration
PF_TRIED = 1  # one try of the steal loop; the value returned is the back-off done (BACKOFF_*)
PF_EXIT = 2  # this thread is done with the loop

BACKOFF_NONE = 0
BACKOFF_PROCYIELD = 1  # procyield(20)
BACKOFF_OSYIELD = 2
BACKOFF_USLEEP = 3  # usleep(1)
BACKOFF_STOLE = 4  # no back-off: the try stole work


@jit
def _thr(tid):
    return PF_NSLOTS + tid * PFT_NSLOTS


@jit
def parforsetup(rt, d, nthr, cnt, wait):
    """Thread i gets [cnt*i/nthr, cnt*(i+1)/nthr); all counters reset."""
    pf = rt.parfor[d]
    pf[:] = 0
    pf[PF_NTHR] = nthr
    pf[PF_CNT] = cnt
    pf[PF_WAIT] = 1 if wait else 0
    for i in range(nthr):
        t = _thr(i)
        pf[t + PFT_BEGIN] = cnt * i // nthr
        pf[t + PFT_END] = cnt * (i + 1) // nthr


@jit
def parfor_tid(rt, d):
    """A thread entering parfordo takes the next thread index."""
    pf = rt.parfor[d]
    tid = pf[PF_THRSEQ]
    pf[PF_THRSEQ] = tid + 1
    return tid


@jit
def proc_fastrand1(rt, p):
    """fastrand1 on collector proc p's M: proc 0 is the collecting M (the allocator's state)."""
    if p == 0:
        x = rt.h[H_FASTRAND]
    else:
        x = rt.gcproc[p, GP_FASTRAND]
    x += x
    if x & 0x80000000:
        x ^= 0x88888EEF
    x &= 0xFFFFFFFF
    if p == 0:
        rt.h[H_FASTRAND] = x
    else:
        rt.gcproc[p, GP_FASTRAND] = x
    return x


@jit
def _leave(pf, t):
    pf[PF_NSTEAL] += pf[t + PFT_NSTEAL]
    pf[PF_NSTEALCNT] += pf[t + PFT_NSTEALCNT]
    pf[PF_NPROCYIELD] += pf[t + PFT_NPROCYIELD]
    pf[PF_NOSYIELD] += pf[t + PFT_NOSYIELD]
    pf[PF_NSLEEP] += pf[t + PFT_NSLEEP]


@jit
def parfor_step(rt, d, tid, p):
    """One step of thread tid (run by proc p) in parfor d: (PF_BODY, i), (PF_TRIED, BACKOFF_*) or (PF_EXIT, 0)."""
    pf = rt.parfor[d]
    nthr = pf[PF_NTHR]
    t = _thr(tid)
    if pf[t + PFT_STEALING] == 0:
        # local work: bump the low index (even past the end, as the seed's xadd does)
        begin = pf[t + PFT_BEGIN]
        pf[t + PFT_BEGIN] = begin + 1
        if begin < pf[t + PFT_END]:
            return PF_BODY, begin
        if nthr == 1:
            return PF_EXIT, 0
        pf[t + PFT_STEALING] = 1
        pf[t + PFT_TRY] = 0
        pf[t + PFT_IDLE] = 0

    try_ = pf[t + PFT_TRY]
    idle = pf[t + PFT_IDLE]
    # long enough without work: count myself idle; when everybody is, we are done
    if try_ > nthr * 4 and idle == 0:
        idle = 1
        pf[PF_DONE] += 1
    if pf[PF_DONE] + (1 - idle) == nthr:
        if idle == 0:
            pf[PF_DONE] += 1
        _leave(pf, t)
        return PF_EXIT, 0
    victim = proc_fastrand1(rt, p) % (nthr - 1)
    if victim >= tid:
        victim += 1
    v = _thr(victim)
    begin = pf[v + PFT_BEGIN]
    end = pf[v + PFT_END]
    if begin + 1 < end:
        if idle != 0:
            pf[PF_DONE] -= 1
            idle = 0
        begin2 = begin + (end - begin) // 2
        pf[v + PFT_END] = begin2
        pf[t + PFT_BEGIN] = begin2
        pf[t + PFT_END] = end
        pf[t + PFT_NSTEAL] += 1
        pf[t + PFT_NSTEALCNT] += end - begin2
        pf[t + PFT_STEALING] = 0
        pf[t + PFT_IDLE] = 0
        return PF_TRIED, BACKOFF_STOLE
    backoff = BACKOFF_NONE
    if try_ < nthr:
        pass
    elif try_ < 4 * nthr:
        pf[t + PFT_NPROCYIELD] += 1
        backoff = BACKOFF_PROCYIELD
    elif pf[PF_WAIT] == 0:
        # the caller does not wait for the others: leave (most work is done by now)
        if idle == 0:
            pf[PF_DONE] += 1
        _leave(pf, t)
        return PF_EXIT, 0
    elif try_ < 6 * nthr:
        pf[t + PFT_NOSYIELD] += 1
        backoff = BACKOFF_OSYIELD
    else:
        pf[t + PFT_NSLEEP] += 1
        backoff = BACKOFF_USLEEP
    pf[t + PFT_TRY] = try_ + 1
    pf[t + PFT_IDLE] = idle
    return PF_TRIED, backoff
