"""The finalizer table and queue, compiled side: mfinal.c and the queue half of mgc0.c.

See :mod:`goheap._runtime.gc` for the collector's phases. The Python shell keeps the
callables (``Heap.set_finalizer``); here is only what the collector must see: which
blocks have a finalizer (an open-addressed set of addresses: 0 empty, -1 deleted) and
which are queued to have it run (``finq``, also a root until Python runs them).
"""

from __future__ import annotations

from .._jit import jit
from ..layout import GS_FINTAB_DEAD, GS_NFIN, GS_NFINQ

_EMPTY = 0
_DELETED = -1


@jit
def _slot(tab, p):
    return (p >> 3) % tab.shape[0]


@jit
def fintab_add(rt, p):
    """Insert p; False if it is already there or the table is full."""
    tab = rt.fintab
    n = tab.shape[0]
    if rt.gcstats[GS_NFIN] + rt.gcstats[GS_FINTAB_DEAD] >= n - 1:
        fintab_rehash(rt)
        if rt.gcstats[GS_NFIN] >= n - 1:
            return False
    i = _slot(tab, p)
    free_at = -1
    for _ in range(n):
        k = tab[i]
        if k == p:
            return False
        if k == _DELETED and free_at < 0:
            free_at = i
        if k == _EMPTY:
            if free_at < 0:
                free_at = i
            break
        i = (i + 1) % n
    if tab[free_at] == _DELETED:
        rt.gcstats[GS_FINTAB_DEAD] -= 1
    tab[free_at] = p
    rt.gcstats[GS_NFIN] += 1
    return True


@jit
def fintab_lookup(rt, p, delete):
    """Whether p has a finalizer; with delete, remove it (the sweep's lookup-with-delete)."""
    tab = rt.fintab
    n = tab.shape[0]
    i = _slot(tab, p)
    for _ in range(n):
        k = tab[i]
        if k == _EMPTY:
            return False
        if k == p:
            if delete:
                tab[i] = _DELETED
                rt.gcstats[GS_NFIN] -= 1
                rt.gcstats[GS_FINTAB_DEAD] += 1
            return True
        i = (i + 1) % n
    return False


@jit
def fintab_rehash(rt):
    """Drop the deleted markers (the seed rehashes at the same size when half the keys are dead)."""
    tab = rt.fintab
    keys = tab[(tab != _EMPTY) & (tab != _DELETED)].copy()
    tab[:] = _EMPTY
    rt.gcstats[GS_NFIN] = 0
    rt.gcstats[GS_FINTAB_DEAD] = 0
    n = tab.shape[0]
    for p in keys:
        i = _slot(tab, p)
        while tab[i] != _EMPTY:
            i = (i + 1) % n
        tab[i] = p
        rt.gcstats[GS_NFIN] += 1


@jit
def finq_push(rt, p):
    """Queue p's finalizer to run; False if the queue is full (the object then waits a cycle)."""
    n = rt.gcstats[GS_NFINQ]
    if n >= rt.finq.shape[0]:
        return False
    rt.finq[n] = p
    rt.gcstats[GS_NFINQ] = n + 1
    return True
