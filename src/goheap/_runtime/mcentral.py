"""Central free lists: mcentral.c. See :mod:`goheap._runtime.malloc` for the overview.

One MCentral per size class keeps that class's spans on two lists: ``nonempty`` (spans
with free objects on their freelist) and ``empty`` (spans fully handed out). It holds no
objects itself; the spans' freelists do, and ``nfree`` counts them. Caches take batches
from the first nonempty span; when a span's last object comes back the span goes back to
the heap, marked as needing zeroing.

Invariant: nfree == sum over the class's spans of (objects per span - ref).
"""

from __future__ import annotations

from ._jit import jit
from .bitmap import markspan, unmarkspan
from .layout import EMPTY_HEAD0, LC_ALLOC_PATH, NONEMPTY_HEAD0, PATH_GROW, SP_FREELIST, SP_LIMIT, SP_NEXT, SP_REF
from .mheap import (
    load,
    mheap_alloc,
    mheap_free,
    mheap_lookup,
    mspanlist_insert,
    mspanlist_is_empty,
    mspanlist_remove,
    span_base,
    span_bytes,
    store,
)


@jit
def mcentral_alloc_list(rt, c, sizeclass, n):
    """Up to n objects of one span, as (count, first) with the chain nil-terminated; (0, 0) when out of memory."""
    nonempty = NONEMPTY_HEAD0 + sizeclass
    if mspanlist_is_empty(rt, nonempty):
        if not mcentral_grow(rt, c, sizeclass):
            return 0, 0
    spans = rt.spans
    s = spans[nonempty, SP_NEXT]
    cap = span_bytes(rt, s) // rt.class_to_size[sizeclass]
    avail = cap - spans[s, SP_REF]
    if avail < n:
        n = avail
    first = spans[s, SP_FREELIST]
    last = first
    for _ in range(n - 1):
        last = load(rt, last)
    spans[s, SP_FREELIST] = load(rt, last)
    store(rt, last, 0)
    spans[s, SP_REF] += n
    rt.central_nfree[sizeclass] -= n
    if n == avail:
        mspanlist_remove(rt, s)
        mspanlist_insert(rt, EMPTY_HEAD0 + sizeclass, s)
    return n, first


@jit
def mcentral_free_list(rt, c, sizeclass, first):
    """Return a nil-terminated chain of objects to their spans."""
    v = first
    while v != 0:
        nxt = load(rt, v)
        mcentral_free(rt, c, sizeclass, v)
        v = nxt


@jit
def mcentral_free(rt, c, sizeclass, v):
    """Put object v back on its span's freelist; give the span back to the heap if it is all free."""
    spans = rt.spans
    s = mheap_lookup(rt, v)
    if spans[s, SP_FREELIST] == 0:
        mspanlist_remove(rt, s)
        mspanlist_insert(rt, NONEMPTY_HEAD0 + sizeclass, s)
    store(rt, v, spans[s, SP_FREELIST])
    spans[s, SP_FREELIST] = v
    rt.central_nfree[sizeclass] += 1
    spans[s, SP_REF] -= 1
    if spans[s, SP_REF] == 0:
        _return_span(rt, c, sizeclass, s)


@jit
def mcentral_free_span(rt, c, sizeclass, s, n, start, end):
    """Splice a swept chain start..end of n objects of span s onto its freelist (MCentral_FreeSpan)."""
    spans = rt.spans
    if spans[s, SP_FREELIST] == 0:
        mspanlist_remove(rt, s)
        mspanlist_insert(rt, NONEMPTY_HEAD0 + sizeclass, s)
    store(rt, end, spans[s, SP_FREELIST])
    spans[s, SP_FREELIST] = start
    spans[s, SP_REF] -= n
    rt.central_nfree[sizeclass] += n
    if spans[s, SP_REF] == 0:
        _return_span(rt, c, sizeclass, s)


@jit
def _return_span(rt, c, sizeclass, s):
    """A span with no objects handed out goes back to the heap, marked as needing zeroing."""
    spans = rt.spans
    nbytes = span_bytes(rt, s)
    start = span_base(rt, s)
    mspanlist_remove(rt, s)
    unmarkspan(rt, start, nbytes)
    store(rt, start, 1)
    spans[s, SP_FREELIST] = 0
    rt.central_nfree[sizeclass] -= nbytes // rt.class_to_size[sizeclass]
    mheap_free(rt, c, s, False)


@jit
def mcentral_grow(rt, c, sizeclass):
    """Get a fresh span from the heap and carve it into an address-ordered freelist."""
    size = rt.class_to_size[sizeclass]
    npages = rt.class_to_allocnpages[sizeclass]
    rt.cache_local[c, LC_ALLOC_PATH] |= PATH_GROW
    s = mheap_alloc(rt, c, npages, sizeclass, False, True)
    if s == 0:
        return False
    spans = rt.spans
    p = span_base(rt, s)
    nbytes = span_bytes(rt, s)
    n = nbytes // size
    for i in range(n - 1):
        store(rt, p + i * size, p + (i + 1) * size)
    store(rt, p + (n - 1) * size, 0)
    spans[s, SP_FREELIST] = p
    spans[s, SP_LIMIT] = p + size * n
    markspan(rt, p, size, n, size * n < nbytes)
    rt.central_nfree[sizeclass] += n
    mspanlist_insert(rt, NONEMPTY_HEAD0 + sizeclass, s)
    return True
