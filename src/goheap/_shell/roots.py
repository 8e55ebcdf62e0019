"""The roots Python manages: :class:`RootSet`, pointer handles and global regions.

See :mod:`goheap._runtime.gc.roots` for how the collector scans them. Every method holds
the heap's lock while it reads or changes the tables, so threads may share a RootSet.
"""

from __future__ import annotations

import numpy as np

from .. import errors
from .._runtime import layout as L
from . import args

__all__ = ["RootSet"]


class RootSet:
    """The heap's roots that Python manages: pointer handles and global regions.

    A *handle* holds one word, scanned conservatively: the block it points into (interior
    pointers too) stays alive. A *region* is memory you own, scanned at every collection
    like the seed's data and bss: conservatively (any word that points into a block keeps
    it alive) or, with a pointer bitmap, only in the words the bitmap names.

    :class:`goheap.Ref` objects (``heap.ref(p)``) hold handles of their own: :meth:`clear`
    leaves them, and :meth:`remove` refuses them (release the Ref instead).
    """

    def __init__(self, heap):
        self._heap = heap
        self._free: list[int] = []
        self._of_refs: set[int] = set()  # handles held by Ref objects
        self._dropped: list[int] = []  # handles of Refs collected since: free at the next add
        self._regions: dict[int, object] = {}  # row -> what keeps its memory exported and alive
        self._rootptrs_used = 0

    # ------------------------------------------------------------ handles

    def add(self, p: int) -> int:
        """Keep the block holding p alive; returns a handle for :meth:`remove` and :meth:`set`."""
        if p.__class__ is not int or not 0 <= p <= args.INT64_MAX:
            p = args.address(p, "root")
        h = self._heap
        with h._lock:
            h._check_open()
            return self._add(p)

    def _add(self, p: int) -> int:
        a = self._heap._arrays
        while self._dropped:
            k = self._dropped.pop()
            self._of_refs.discard(k)
            self._free.append(k)
        if self._free:
            k = self._free.pop()
        else:
            k = int(a.h[L.H_NROOTSLOTS])
            if k >= a.rootslots.shape[0]:
                raise errors.OutOfMemory(f"all {a.rootslots.shape[0]} root handles are in use (Limits.root_slots)")
            a.h[L.H_NROOTSLOTS] = k + 1
        a.rootslots[k] = p
        return k

    def set(self, handle: int, p: int) -> None:
        """Make the handle hold p instead."""
        p = args.address(p, "root")
        with self._heap._lock:
            k = self._slot(handle)
            self._heap._arrays.rootslots[k] = p

    def get(self, handle: int) -> int:
        with self._heap._lock:
            k = self._slot(handle)
            return int(self._heap._arrays.rootslots[k])

    def remove(self, handle: int) -> None:
        """Drop the handle: what it pointed to may be collected."""
        with self._heap._lock:
            k = self._slot(handle)
            if k in self._of_refs:
                raise errors.HeapError(f"root handle {k} belongs to a Ref: release the Ref")
            self._heap._arrays.rootslots[k] = 0
            self._free.append(k)

    def clear(self) -> None:
        """Drop every handle (regions stay, and the handles of live Refs)."""
        h = self._heap
        with h._lock:
            h._check_open()
            a = h._arrays
            n = int(a.h[L.H_NROOTSLOTS])
            kept = self._of_refs.difference(self._dropped)
            keep = np.zeros(n, bool)
            keep[sorted(kept)] = True
            a.rootslots[:n][~keep] = 0
            top = max(kept) + 1 if kept else 0
            a.h[L.H_NROOTSLOTS] = top
            self._dropped.clear()
            self._of_refs = kept
            self._free = [k for k in range(top) if not keep[k]]

    def __len__(self) -> int:
        h = self._heap
        with h._lock:
            h._check_open()
            n = int(h._arrays.h[L.H_NROOTSLOTS])
            return int(np.count_nonzero(h._arrays.rootslots[:n]))

    def _slot(self, handle: int) -> int:
        """The slot of a handle in use (the caller holds the heap's lock)."""
        self._heap._check_open()
        k = handle if handle.__class__ is int else args.integer(handle, "root handle")
        if not 0 <= k < int(self._heap._arrays.h[L.H_NROOTSLOTS]) or k in self._free or k in self._dropped:
            raise errors.InvalidValue(f"no root handle {handle!r}")
        return k

    # ------------------------------------------------------------ the handles of Refs

    def _add_ref(self, p: int) -> int:
        """A handle for a new Ref (the caller holds the heap's lock and checked it open)."""
        k = self._add(p)
        self._of_refs.add(k)
        return k

    def _release_ref(self, k: int) -> None:
        """Ref.release: the handle is free again."""
        with self._heap._lock:
            if self._heap._closed or k not in self._of_refs:
                return
            self._of_refs.discard(k)
            self._heap._arrays.rootslots[k] = 0
            self._free.append(k)

    def _drop_ref(self, k: int) -> None:
        """A Ref was collected: its root goes now, its handle at the next add.

        Runs wherever the garbage collector runs it (inside any call of this thread, with the
        heap's lock maybe held halfway through a change), so it takes no lock: one store
        that the collector sees or not, and one append.
        """
        if not self._heap._closed:
            self._heap._arrays.rootslots[k] = 0
            self._dropped.append(k)

    # ------------------------------------------------------------ regions

    def add_region(self, region, nbytes: int | None = None, *, pointer_bitmap=None) -> int:
        """Scan memory you own as a root at every collection; returns a handle for :meth:`remove_region`.

        region: a C-contiguous numpy array or other buffer, or an int address inside this
        heap's arena (a nogc block, say) with ``nbytes``. The memory must be 8-byte aligned;
        its words are read as int64. A buffer stays exported until the region is removed (or
        the heap closed), so it cannot be freed or moved under the collector: a bytearray
        cannot be resized, an mmap not closed (they raise BufferError). A numpy array is kept
        referenced, which stops ``resize()``; do not call it with ``refcheck=False``.
        pointer_bitmap: one flag per word (a sequence or array of bools); only words whose
        flag is set are scanned. Without it, every word is (conservative).
        """
        h = self._heap
        h._check_open()
        addr, size, owner = self._region_memory(region, nbytes)
        nwords = size // 8
        words = None
        if pointer_bitmap is not None:
            try:
                flags = np.asarray(pointer_bitmap, dtype=bool).ravel()
            except (TypeError, ValueError) as exc:
                raise errors.InvalidValue(f"pointer_bitmap is not a sequence of bools: {exc}") from None
            if flags.shape[0] != nwords:
                raise errors.InvalidSize(f"pointer_bitmap has {flags.shape[0]} flags for a region of {nwords} words")
            words = np.flatnonzero(flags)
        with h._lock:
            h._check_open()
            a = h._arrays
            rows = a.roots
            nroots = int(a.gcstats[L.GS_NROOTS])
            row = next((r for r in range(nroots) if rows[r, L.RG_KIND] == L.ROOT_NONE), nroots)
            if row >= rows.shape[0]:
                raise errors.OutOfMemory(f"all {rows.shape[0]} root regions are in use (Limits.global_regions)")
            ptr_start = nptrs = 0
            kind = L.ROOT_CONSERVATIVE
            if words is not None:
                ptr_start = self._alloc_rootptrs(words.shape[0])
                nptrs = words.shape[0]
                a.rootptrs[ptr_start : ptr_start + nptrs] = words
                kind = L.ROOT_PRECISE
            rows[row, L.RG_ADDR] = addr
            rows[row, L.RG_NBYTES] = nwords * 8
            rows[row, L.RG_PTR_START] = ptr_start
            rows[row, L.RG_NPTRS] = nptrs
            rows[row, L.RG_KIND] = kind  # last: a collection in another thread sees the row whole or not at all
            a.gcstats[L.GS_NROOTS] = max(nroots, row + 1)
            self._regions[row] = owner
            return row

    def remove_region(self, handle: int) -> None:
        """Stop scanning the region; what only it kept alive may be collected. Its buffer is let go."""
        h = self._heap
        with h._lock:
            h._check_open()
            if isinstance(handle, bool) or handle not in self._regions:
                raise errors.InvalidValue(f"no root region {handle!r}")
            a = h._arrays
            a.roots[handle, L.RG_KIND] = L.ROOT_NONE  # first: no collection scans it from here on
            a.roots[handle] = 0
            del self._regions[handle]
            n = int(a.gcstats[L.GS_NROOTS])
            while n > 0 and a.roots[n - 1, L.RG_KIND] == L.ROOT_NONE:
                n -= 1
            a.gcstats[L.GS_NROOTS] = n

    def regions(self) -> list[tuple[int, int, int]]:
        """(handle, address, nbytes) of every registered region."""
        h = self._heap
        with h._lock:
            h._check_open()
            a = h._arrays
            return [(r, int(a.roots[r, L.RG_ADDR]), int(a.roots[r, L.RG_NBYTES])) for r in sorted(self._regions)]

    def _region_memory(self, region, nbytes):
        """(address, nbytes, owner) of a region; owner keeps a buffer exported (None for heap memory)."""
        h = self._heap
        if nbytes is not None:
            nbytes = args.size(nbytes, "region size")
        if isinstance(region, (int, np.integer)) and not isinstance(region, (bool, np.bool_)):
            addr = args.address(region, "region address")
            if nbytes is None:
                raise errors.InvalidSize("add_region(address, nbytes) needs the region's size")
            if addr < h.arena_start or addr + nbytes > h.arena_used:
                raise errors.AddressError(
                    f"region [{addr:#x}, {addr + nbytes:#x}) is not inside this heap's arena; pass a buffer instead"
                )
            owner = None
        else:
            try:
                # frombuffer holds the exporter's buffer (a view of it for an array) while the array lives
                arr = region if isinstance(region, np.ndarray) else np.frombuffer(region, dtype=np.uint8)
            except (TypeError, ValueError, BufferError) as exc:
                raise errors.AddressError(f"a root region must be a buffer or an address, not {type(region).__name__}: {exc}") from None
            if not arr.flags.c_contiguous:
                raise errors.AddressError("a root region must be C-contiguous memory")
            addr = int(arr.__array_interface__["data"][0])
            size = int(arr.nbytes)
            if nbytes is not None:
                if nbytes > size:
                    raise errors.InvalidSize(f"nbytes {nbytes} is outside the buffer's {size} bytes")
                size = nbytes
            nbytes = size
            owner = (region, arr)
        if addr % 8:
            raise errors.AddressError(f"root region at {addr:#x} is not 8-byte aligned")
        return addr, nbytes, owner

    def _alloc_rootptrs(self, n: int) -> int:
        a = self._heap._arrays
        cap = a.rootptrs.shape[0]
        if self._rootptrs_used + n > cap:
            # compact: move every live precise region's offsets to the front
            used = 0
            precise = [r for r in self._regions if a.roots[r, L.RG_KIND] == L.ROOT_PRECISE]
            for r in sorted(precise, key=lambda r: int(a.roots[r, L.RG_PTR_START])):
                start, k = int(a.roots[r, L.RG_PTR_START]), int(a.roots[r, L.RG_NPTRS])
                a.rootptrs[used : used + k] = a.rootptrs[start : start + k].copy()
                a.roots[r, L.RG_PTR_START] = used
                used += k
            self._rootptrs_used = used
            if used + n > cap:
                raise errors.OutOfMemory(f"root regions' pointer bitmaps need more than {cap} pointer words")
        start = self._rootptrs_used
        self._rootptrs_used += n
        return start
