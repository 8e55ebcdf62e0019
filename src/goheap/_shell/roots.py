"""The roots Python manages: :class:`RootSet`, pointer handles and global regions.

See :mod:`goheap._runtime.gc.roots` for how the collector scans them.
"""

from __future__ import annotations

import numpy as np

from .. import errors
from .._runtime import layout as L

__all__ = ["RootSet"]


class RootSet:
    """The heap's roots that Python manages: pointer handles and global regions.

    A *handle* holds one word, scanned conservatively: the block it points into (interior
    pointers too) stays alive. A *region* is memory you own, scanned at every collection
    like the seed's data and bss: conservatively (any word that points into a block keeps
    it alive) or, with a pointer bitmap, only in the words the bitmap names.
    """

    def __init__(self, heap):
        self._heap = heap
        self._free: list[int] = []
        self._regions: dict[int, object] = {}  # row -> the object whose memory it is (kept alive)
        self._rootptrs_used = 0

    # ------------------------------------------------------------ handles

    def add(self, p: int) -> int:
        """Keep the block holding p alive; returns a handle for :meth:`remove` and :meth:`set`."""
        h = self._heap
        h._check_open()
        slots = h._arrays.rootslots
        if self._free:
            k = self._free.pop()
        else:
            k = int(h._arrays.h[L.H_NROOTSLOTS])
            if k >= slots.shape[0]:
                raise errors.OutOfMemory(f"all {slots.shape[0]} root handles are in use")
            h._arrays.h[L.H_NROOTSLOTS] = k + 1
        slots[k] = int(p)
        return k

    def set(self, handle: int, p: int) -> None:
        """Make the handle hold p instead."""
        self._heap._check_open()
        self._heap._arrays.rootslots[self._slot(handle)] = int(p)

    def get(self, handle: int) -> int:
        self._heap._check_open()
        return int(self._heap._arrays.rootslots[self._slot(handle)])

    def remove(self, handle: int) -> None:
        """Drop the handle: what it pointed to may be collected."""
        self._heap._check_open()
        self._heap._arrays.rootslots[self._slot(handle)] = 0
        self._free.append(handle)

    def clear(self) -> None:
        """Drop every handle (regions stay)."""
        h = self._heap
        h._check_open()
        n = int(h._arrays.h[L.H_NROOTSLOTS])
        h._arrays.rootslots[:n] = 0
        h._arrays.h[L.H_NROOTSLOTS] = 0
        self._free.clear()

    def __len__(self) -> int:
        self._heap._check_open()
        n = int(self._heap._arrays.h[L.H_NROOTSLOTS])
        return int(np.count_nonzero(self._heap._arrays.rootslots[:n]))

    def _slot(self, handle: int) -> int:
        self._heap._check_open()
        if not isinstance(handle, int) or not 0 <= handle < int(self._heap._arrays.h[L.H_NROOTSLOTS]) or handle in self._free:
            raise errors.HeapError(f"no root handle {handle!r}")
        return handle

    # ------------------------------------------------------------ regions

    def add_region(self, region, nbytes: int | None = None, *, pointer_bitmap=None) -> int:
        """Scan memory you own as a root at every collection; returns a handle for :meth:`remove_region`.

        region: a C-contiguous numpy array or other buffer (kept referenced until removed;
        do not resize it), or an int address inside this heap's arena (a nogc block, say)
        with ``nbytes``. The memory must be 8-byte aligned; its words are read as int64.
        pointer_bitmap: one flag per word (a sequence or array of bools); only words whose
        flag is set are scanned. Without it, every word is (conservative).
        """
        h = self._heap
        h._check_open()
        addr, size, owner = self._region_memory(region, nbytes)
        nwords = size // 8
        a = h._arrays
        rows = a.roots
        row = next((r for r in range(int(a.gcstats[L.GS_NROOTS])) if rows[r, L.RG_KIND] == L.ROOT_NONE), None)
        if row is None:
            row = int(a.gcstats[L.GS_NROOTS])
            if row >= rows.shape[0]:
                raise errors.OutOfMemory(f"all {rows.shape[0]} root regions are in use")
        ptr_start = nptrs = 0
        kind = L.ROOT_CONSERVATIVE
        if pointer_bitmap is not None:
            flags = np.asarray(pointer_bitmap, dtype=bool).ravel()
            if flags.shape[0] != nwords:
                raise errors.InvalidSize(f"pointer_bitmap has {flags.shape[0]} flags for a region of {nwords} words")
            words = np.flatnonzero(flags)
            ptr_start = self._alloc_rootptrs(words.shape[0])
            nptrs = words.shape[0]
            a.rootptrs[ptr_start : ptr_start + nptrs] = words
            kind = L.ROOT_PRECISE
        rows[row, L.RG_ADDR] = addr
        rows[row, L.RG_NBYTES] = nwords * 8
        rows[row, L.RG_PTR_START] = ptr_start
        rows[row, L.RG_NPTRS] = nptrs
        rows[row, L.RG_KIND] = kind
        a.gcstats[L.GS_NROOTS] = max(int(a.gcstats[L.GS_NROOTS]), row + 1)
        self._regions[row] = owner
        return row

    def remove_region(self, handle: int) -> None:
        """Stop scanning the region; what only it kept alive may be collected."""
        h = self._heap
        h._check_open()
        if handle not in self._regions:
            raise errors.HeapError(f"no root region {handle!r}")
        a = h._arrays
        a.roots[handle] = 0  # kind ROOT_NONE
        del self._regions[handle]
        n = int(a.gcstats[L.GS_NROOTS])
        while n > 0 and a.roots[n - 1, L.RG_KIND] == L.ROOT_NONE:
            n -= 1
        a.gcstats[L.GS_NROOTS] = n

    def regions(self) -> list[tuple[int, int, int]]:
        """(handle, address, nbytes) of every registered region."""
        a = self._heap._arrays
        return [(r, int(a.roots[r, L.RG_ADDR]), int(a.roots[r, L.RG_NBYTES])) for r in sorted(self._regions)]

    def _region_memory(self, region, nbytes):
        h = self._heap
        if isinstance(region, (int, np.integer)) and not isinstance(region, bool):
            addr = int(region)
            if nbytes is None or nbytes < 0:
                raise errors.InvalidSize("add_region(address, nbytes) needs the region's size")
            if addr < h.arena_start or addr + nbytes > h.arena_used:
                raise errors.AddressError(
                    f"region [{addr:#x}, {addr + nbytes:#x}) is not inside this heap's arena; pass a buffer instead"
                )
            owner = None
        else:
            arr = region if isinstance(region, np.ndarray) else np.frombuffer(region, dtype=np.uint8)
            if not arr.flags.c_contiguous:
                raise errors.AddressError("a root region must be C-contiguous memory")
            addr = int(arr.__array_interface__["data"][0])
            size = int(arr.nbytes)
            if nbytes is not None:
                if not 0 <= nbytes <= size:
                    raise errors.InvalidSize(f"nbytes {nbytes} is outside the buffer's {size} bytes")
                size = nbytes
            nbytes = size
            owner = region
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
