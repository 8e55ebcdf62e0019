"""Several collector procs (gchelper), interleaved deterministically. See :mod:`goheap._runtime.gc`.

With ``nproc`` > 1 the seed's collecting M and its nproc-1 helpers each run
``parfordo(markfor)`` (markroot over the roots), ``scanblock(nil, keepworking)`` (drain
work.full, waiting in getfull until every proc waits), then ``parfordo(sweepfor)``
(sweepspan over allspans). goheap runs the same per-proc algorithms on one thread, as
a discrete-event simulation: each proc has a virtual clock, the proc with the earliest
clock (lowest number on ties) takes the next step, and the step advances its clock by the
cost below. A step is one parfor iteration or steal try, the start of a root (its whole
scan), one Obj popped and scanned, one iteration of getfull's wait loop, or one span
swept (a proc that stays first runs several such steps in one go). Everything the procs share (the Workbuf stacks, nwait, the parfor ranges, the
mark bits, the heap) is updated by each step in that order, so the handoff, steal and
yield counts are exactly those the seed's code produces for this interleaving, and the
marking and sweep results are those of a real run in which the steps happened in this
order. The sweep runs spans in the order the procs reach them, all charged to the
collecting thread's cache (the totals cachestats folds in are the same).

The cost model (virtual nanoseconds) is a rough picture of a 2013 amd64 machine, fixed so
that runs are reproducible; it is not measured.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit
from ..units import UNIT_GC_PROCS, call_unit
from ..constants import MSPAN_IN_USE
from ..layout import (
    FIRST_SPAN,
    GP_CLOCK,
    GP_FASTRAND,
    GP_KEEPWORKING,
    GP_NOBJ,
    GP_NOSYIELD,
    GP_NPROCYIELD,
    GP_NPTR,
    GP_NSLEEP,
    GP_STATE,
    GP_TID,
    GP_TRY,
    GP_WBUF,
    GS_NPROC,
    GS_NWAIT,
    GS_WORKBUF_FULL,
    PARFOR_MARK,
    PARFOR_SWEEP,
    SP_ELEMSIZE,
    SP_SIZECLASS,
    SP_STATE,
    WB_NOBJ,
    runtime_ref,
)
from ..mheap import nanotime, span_bytes
from .mark import (
    SCAN_RETURNED,
    SCAN_WAIT,
    _lfstack_pop,
    bufferlist_get,
    bufferlist_put,
    drain,
    markroot_begin,
    refill,
)
from .parfor import (
    BACKOFF_NONE,
    BACKOFF_OSYIELD,
    BACKOFF_PROCYIELD,
    BACKOFF_STOLE,
    PF_BODY,
    PF_EXIT,
    parfor_step,
    parfor_tid,
)
from .sweep import sweepspan

# ---------------------------------------------------------------- the cost model (virtual ns)
COST_HELPER_START = 20_000  # helpgc wakes the helpers; they start after the collecting M
COST_PARFOR_ITER = 10  # take an iteration from one's own range
COST_STEAL_TRY = 30  # read a victim's range, try to steal
COST_PROCYIELD = 20 * 10  # procyield(20): 20 PAUSE instructions
COST_OSYIELD = 1_000  # sched_yield
COST_USLEEP_1 = 55_000  # usleep(1): the kernel's 50 us timer slack dominates
COST_USLEEP_100 = 150_000  # usleep(100)
COST_ROOT = 50  # markroot: set up a buffer and scan the root ...
COST_OBJECT = 20  # ... or pop one Obj and look up its type ...
COST_WORD = 2  # ... plus this per word scanned
COST_SWEEP_SPAN = 100  # sweepspan: one span ...
COST_SWEEP_OBJECT = 5  # ... plus this per object slot

# proc states
P_MARKFOR = 0  # in parfordo(markfor)
P_MARKROOT = 1  # in markroot's scanblock (keepworking false)
P_DRAIN = 2  # in scanblock(nil, keepworking true)
P_GETFULL = 3  # waiting in getfull
P_SWEEPFOR = 4  # in parfordo(sweepfor)
P_DONE = 5

_FASTRAND_SEED = 0x49F6428A  # mcommoninit's seed, without the cputicks() term


@jit
def _backoff_cost(backoff):
    if backoff == BACKOFF_NONE or backoff == BACKOFF_STOLE:
        return COST_STEAL_TRY
    if backoff == BACKOFF_PROCYIELD:
        return COST_STEAL_TRY + COST_PROCYIELD
    if backoff == BACKOFF_OSYIELD:
        return COST_STEAL_TRY + COST_OSYIELD
    return COST_STEAL_TRY + COST_USLEEP_1


@jit
def _getfull_step(rt, p):
    """One iteration of getfull's wait loop: True when it ends (with a buffer, or none: mark is over)."""
    g = rt.gcproc[p]
    if rt.gcstats[GS_WORKBUF_FULL] != 0:
        rt.gcstats[GS_NWAIT] -= 1
        b = _lfstack_pop(rt, GS_WORKBUF_FULL)
        g[GP_WBUF] = b
        g[GP_NOBJ] = rt.workbuf[b, WB_NOBJ]
        return True, COST_STEAL_TRY
    if rt.gcstats[GS_NWAIT] == rt.gcstats[GS_NPROC]:
        g[GP_WBUF] = 0
        return True, COST_STEAL_TRY
    i = g[GP_TRY]
    g[GP_TRY] = i + 1
    if i < 10:
        g[GP_NPROCYIELD] += 1
        return False, COST_PROCYIELD
    if i < 20:
        g[GP_NOSYIELD] += 1
        return False, COST_OSYIELD
    g[GP_NSLEEP] += 1
    return False, COST_USLEEP_100


@jit
def _sweep_cost(rt, s):
    if rt.spans[s, SP_STATE] != MSPAN_IN_USE:
        return COST_PARFOR_ITER
    n = 1
    if rt.spans[s, SP_SIZECLASS] != 0:
        n = span_bytes(rt, s) // rt.spans[s, SP_ELEMSIZE]
    return COST_SWEEP_SPAN + COST_SWEEP_OBJECT * n


@jit
def _next_due(rt, p, nproc):
    """(clock, proc) of the proc after p due to step next: the earliest clock, lowest number on ties."""
    best_clock = np.iinfo(np.int64).max
    best = nproc
    for q in range(nproc):
        if q != p and rt.gcproc[q, GP_STATE] != P_DONE and rt.gcproc[q, GP_CLOCK] < best_clock:
            best_clock = rt.gcproc[q, GP_CLOCK]
            best = q
    return best_clock, best


@jit
def _step(rt, c, p, nproc):
    """Run proc p for one step (several Objs of a scan, while it stays first); its cost."""
    g = rt.gcproc[p]
    state = g[GP_STATE]
    if state == P_MARKFOR:
        act, v = parfor_step(rt, PARFOR_MARK, g[GP_TID], p)
        if act == PF_BODY:
            nbytes = markroot_begin(rt, p, v)
            g[GP_STATE] = P_MARKROOT
            g[GP_KEEPWORKING] = 0
            return COST_PARFOR_ITER + COST_ROOT + COST_WORD * (nbytes >> 3)
        if act == PF_EXIT:
            bufferlist_get(rt)
            g[GP_WBUF] = 0
            g[GP_NOBJ] = 0
            g[GP_NPTR] = 0
            g[GP_KEEPWORKING] = 1
            g[GP_STATE] = P_DRAIN
            return COST_PARFOR_ITER
        return _backoff_cost(v)
    if state == P_MARKROOT or state == P_DRAIN:
        if g[GP_NOBJ] > 0:
            # pop and scan Objs, one step each, for as long as this proc stays first
            limit_clock, limit_p = _next_due(rt, p, nproc)
            clock = g[GP_CLOCK]
            wbuf, nobj, nptr, clock2 = drain(
                rt, p, g[GP_WBUF], g[GP_NOBJ], g[GP_NPTR], clock, limit_clock, limit_p, COST_OBJECT, COST_WORD
            )
            g[GP_WBUF] = wbuf
            g[GP_NOBJ] = nobj
            g[GP_NPTR] = nptr
            return clock2 - clock
        status = refill(rt, p, g[GP_KEEPWORKING] != 0)
        if status == SCAN_RETURNED:
            bufferlist_put(rt)
            g[GP_STATE] = P_MARKFOR
        elif status == SCAN_WAIT:
            g[GP_TRY] = 0
            g[GP_STATE] = P_GETFULL
        return COST_OBJECT
    if state == P_GETFULL:
        ended, cost = _getfull_step(rt, p)
        if ended:
            if g[GP_WBUF] != 0:
                g[GP_STATE] = P_DRAIN
            else:
                bufferlist_put(rt)
                g[GP_TID] = parfor_tid(rt, PARFOR_SWEEP)
                g[GP_STATE] = P_SWEEPFOR
        return cost
    if state == P_SWEEPFOR:
        act, v = parfor_step(rt, PARFOR_SWEEP, g[GP_TID], p)
        if act == PF_BODY:
            s = FIRST_SPAN + v
            cost = COST_PARFOR_ITER + _sweep_cost(rt, s)
            sweepspan(rt, c, s)
            return cost
        if act == PF_EXIT:
            g[GP_STATE] = P_DONE
            return COST_PARFOR_ITER
        return _backoff_cost(v)
    return 0


@jit
def gc_procs(rt, c, nproc):
    """Mark and sweep with nproc interleaved procs (parfors already set up); the real time mark ended.

    Its machine code is a unit of its own (see units.py), loaded only by heaps with nproc > 1.
    """
    return call_unit(rt.code[UNIT_GC_PROCS], UNIT_GC_PROCS, runtime_ref(rt), c, nproc)


@jit
def gc_procs_unit(rt, c, nproc):
    """The unit of :func:`gc_procs`."""
    rt.gcstats[GS_NPROC] = nproc
    rt.gcstats[GS_NWAIT] = 0
    for p in range(nproc):
        g = rt.gcproc[p]
        if p > 0 and g[GP_FASTRAND] == 0:
            g[GP_FASTRAND] = _FASTRAND_SEED + p
        g[GP_STATE] = P_MARKFOR
        g[GP_CLOCK] = 0 if p == 0 else COST_HELPER_START
        g[GP_TID] = -1
        g[GP_WBUF] = 0
        g[GP_NOBJ] = 0
        g[GP_NPTR] = 0
    # the collecting M enters parfordo first, then the helpers in the order they wake
    for p in range(nproc):
        rt.gcproc[p, GP_TID] = parfor_tid(rt, PARFOR_MARK)
    t2 = 0
    while True:
        p = -1
        for q in range(nproc):
            if rt.gcproc[q, GP_STATE] != P_DONE and (p < 0 or rt.gcproc[q, GP_CLOCK] < rt.gcproc[p, GP_CLOCK]):
                p = q
        if p < 0:
            break
        was_marking = rt.gcproc[p, GP_STATE] < P_SWEEPFOR
        rt.gcproc[p, GP_CLOCK] += _step(rt, c, p, nproc)
        if p == 0 and was_marking and rt.gcproc[0, GP_STATE] == P_SWEEPFOR:
            t2 = nanotime(rt)
    return t2
