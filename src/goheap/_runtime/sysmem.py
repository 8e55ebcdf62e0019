"""The OS layer: mem_linux.c. The only module that talks to the operating system.

See :mod:`goheap._runtime.malloc` for the overview.

A region of address space is in one of three states:

* *Reserved*: address space is claimed (PROT_NONE, MAP_NORESERVE) and costs nothing.
  Touching it faults.
* *Ready*: readable and writable. Its pages are paged in lazily, on first touch, and
  read back as zero until written.
* *Released*: Ready, but its pages were handed back with ``madvise(MADV_DONTNEED)``; the
  next touch pages in fresh zero pages.

Each helper's docstring starts with the transition it performs. :class:`SysMem` wraps an
:class:`OSBackend` and does the accounting: it charges ``MemStats.Sys`` where the seed's
SysAlloc / SysMap / SysFree do, and never for SysReserve or SysUnused.

Memory is exposed to numpy (and so to compiled code) as arrays built over the raw
address with ``__array_interface__``: no copy, no Python buffer object in the way.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap as _mmap
import os

import numpy as np

from ..errors import OutOfMemory
from ._jit import jit
from .layout import H_SYS_MAPPED, H_SYSMAP_LIMIT, ST_SYS

__all__ = ["FailingOS", "LinuxOS", "OSBackend", "SysMem", "array_at", "resident_bytes", "sys_map", "sys_unused"]

PROT_NONE = 0
PROT_READ = _mmap.PROT_READ
PROT_WRITE = _mmap.PROT_WRITE
MAP_PRIVATE = _mmap.MAP_PRIVATE
MAP_ANONYMOUS = _mmap.MAP_ANONYMOUS
MAP_NORESERVE = 0x4000
MAP_FIXED_NOREPLACE = 0x100000
MADV_DONTNEED = 4
MAP_FAILED = ctypes.c_void_p(-1).value

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


class _RawMemory:
    """Hands numpy an address and a length through the array interface."""

    def __init__(self, addr: int, nbytes: int, typestr: str, itemsize: int):
        self.__array_interface__ = {
            "data": (addr, False),
            "shape": (nbytes // itemsize,),
            "typestr": typestr,
            "version": 3,
        }


def array_at(addr: int, nbytes: int, dtype: np.dtype | type = np.int64) -> np.ndarray:
    """A numpy array over ``nbytes`` of memory at ``addr``; the caller keeps the memory alive."""
    dt = np.dtype(dtype)
    return np.asarray(_RawMemory(addr, nbytes, dt.str, dt.itemsize))


class OSBackend:
    """What the runtime needs from the OS. :class:`LinuxOS` is the real one.

    The compiled runtime maps arena and bitmap pages itself (:func:`sys_map`), without
    calling back into Python; it honours ``map_limit`` (bytes, or None for no limit) so that
    a test backend can make SysMap refuse there too.
    """

    map_limit: int | None = None

    def reserve(self, hint: int, nbytes: int) -> int:
        """Nothing → Reserved. Claims nbytes at ``hint`` if it is free, else anywhere; 0 on failure."""
        raise NotImplementedError

    def map(self, addr: int, nbytes: int) -> bool:
        """Reserved → Ready. False when the OS refuses."""
        raise NotImplementedError

    def unused(self, addr: int, nbytes: int) -> None:
        """Ready → Released: the pages leave RSS and read back as zero."""
        raise NotImplementedError

    def free(self, addr: int, nbytes: int) -> None:
        """Any state → Nothing."""
        raise NotImplementedError

    def alloc(self, nbytes: int) -> int:
        """Nothing → Ready, anywhere, lazily paged; 0 on failure."""
        raise NotImplementedError


class LinuxOS(OSBackend):
    """Anonymous private mappings through libc."""

    def reserve(self, hint: int, nbytes: int) -> int:
        flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
        if hint:
            p = _libc.mmap(hint, nbytes, PROT_NONE, flags | MAP_FIXED_NOREPLACE, -1, 0)
            if p not in (None, MAP_FAILED):
                if p == hint:
                    return p
                _libc.munmap(p, nbytes)  # an old kernel ignored the flag and put it elsewhere
        p = _libc.mmap(None, nbytes, PROT_NONE, flags, -1, 0)
        return 0 if p in (None, MAP_FAILED) else p

    def map(self, addr: int, nbytes: int) -> bool:
        return _libc.mprotect(addr, nbytes, PROT_READ | PROT_WRITE) == 0

    def unused(self, addr: int, nbytes: int) -> None:
        _libc.madvise(addr, nbytes, MADV_DONTNEED)

    def free(self, addr: int, nbytes: int) -> None:
        _libc.munmap(addr, nbytes)

    def alloc(self, nbytes: int) -> int:
        flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
        p = _libc.mmap(None, nbytes, PROT_READ | PROT_WRITE, flags, -1, 0)
        return 0 if p in (None, MAP_FAILED) else p


class FailingOS(LinuxOS):
    """A test double: the real OS, but SysMap refuses past ``map_limit`` bytes and every call is logged.

    ``ignore_hint`` makes reserve behave as if the hint address were taken. Calls from
    compiled code (the arena's SysMap and SysUnused) are not logged, but the heap built over
    this backend stops mapping once ``map_limit`` bytes of arena and bitmap are mapped.
    """

    def __init__(self, map_limit: int | None = None, ignore_hint: bool = False):
        self.map_limit = map_limit
        self.ignore_hint = ignore_hint
        self.mapped = 0
        self.calls: list[tuple[str, int, int]] = []

    def reserve(self, hint: int, nbytes: int) -> int:
        self.calls.append(("reserve", hint, nbytes))
        return super().reserve(0 if self.ignore_hint else hint, nbytes)

    def map(self, addr: int, nbytes: int) -> bool:
        self.calls.append(("map", addr, nbytes))
        if self.map_limit is not None and self.mapped + nbytes > self.map_limit:
            return False
        self.mapped += nbytes
        return super().map(addr, nbytes)

    def unused(self, addr: int, nbytes: int) -> None:
        self.calls.append(("unused", addr, nbytes))
        super().unused(addr, nbytes)

    def free(self, addr: int, nbytes: int) -> None:
        self.calls.append(("free", addr, nbytes))
        super().free(addr, nbytes)

    def alloc(self, nbytes: int) -> int:
        self.calls.append(("alloc", 0, nbytes))
        return super().alloc(nbytes)


class SysMem:
    """SysAlloc / SysReserve / SysMap / SysUnused / SysFree over a backend, with the seed's accounting.

    ``on_sys(delta)`` is called with every change of ``MemStats.Sys``.
    """

    def __init__(self, backend: OSBackend | None = None, on_sys=None):
        self.backend = backend or LinuxOS()
        self.on_sys = on_sys or (lambda delta: None)
        self._owned: list[tuple[int, int]] = []

    def sys_alloc(self, nbytes: int, what: str) -> int:
        """Nothing → Ready: fresh zeroed memory anywhere, charged to Sys."""
        p = self.backend.alloc(nbytes)
        if not p:
            raise OutOfMemory(f"cannot allocate {nbytes} bytes for {what}: {os.strerror(ctypes.get_errno())}")
        self._owned.append((p, nbytes))
        self.on_sys(nbytes)
        return p

    def sys_reserve(self, hint: int, nbytes: int, what: str) -> int:
        """Nothing → Reserved, at ``hint`` if possible; not charged."""
        p = self.backend.reserve(hint, nbytes)
        if not p:
            raise OutOfMemory(f"cannot reserve {nbytes} bytes of address space for {what}")
        self._owned.append((p, nbytes))
        return p

    def sys_map(self, addr: int, nbytes: int) -> bool:
        """Reserved → Ready, charged to Sys; False when the OS refuses."""
        if not self.backend.map(addr, nbytes):
            return False
        self.on_sys(nbytes)
        return True

    def sys_unused(self, addr: int, nbytes: int) -> None:
        """Ready → Released; Sys is unchanged (HeapReleased tracks it)."""
        self.backend.unused(addr, nbytes)

    def sys_free(self, addr: int, nbytes: int) -> None:
        """Ready → Nothing, uncharged from Sys."""
        self.backend.free(addr, nbytes)
        self._owned.remove((addr, nbytes))
        self.on_sys(-nbytes)

    def release_all(self) -> None:
        """Unmap everything this SysMem obtained (Heap.close)."""
        for addr, nbytes in reversed(self._owned):
            self.backend.free(addr, nbytes)
        self._owned.clear()


# ---------------------------------------------------------------- the same calls, from compiled code
#
# Compiled code grows the arena (SysMap) and releases pages (SysUnused) without coming back
# to Python: it calls libc directly. Addresses and lengths are passed as int64, which has
# the same calling convention as a pointer or size_t on amd64. With NUMBA_DISABLE_JIT the
# ctypes functions stand in.

import numba as _nb  # noqa: E402
from numba import types as _types  # noqa: E402

if _nb.config.DISABLE_JIT:

    def os_mprotect(addr, nbytes, prot):
        return _libc.mprotect(int(addr), int(nbytes), int(prot))

    def os_madvise(addr, nbytes, advice):
        return _libc.madvise(int(addr), int(nbytes), int(advice))

    def os_clock_gettime(clock_id, timespec):
        return _libc.clock_gettime(int(clock_id), timespec.ctypes.data_as(ctypes.c_void_p))

else:
    os_mprotect = _types.ExternalFunction("mprotect", _types.int32(_types.int64, _types.int64, _types.int32))
    os_madvise = _types.ExternalFunction("madvise", _types.int32(_types.int64, _types.int64, _types.int32))
    _clock_gettime = _types.ExternalFunction("clock_gettime", _types.int32(_types.int32, _types.voidptr))

    @jit
    def os_clock_gettime(clock_id, timespec):
        return _clock_gettime(clock_id, timespec.ctypes)


_libc.clock_gettime.argtypes = [ctypes.c_int, ctypes.c_void_p]
CLOCK_REALTIME = 0


@jit
def sys_map(rt, addr, nbytes):
    """Reserved → Ready, charged to Sys (SysMap, from compiled code). False when the OS refuses.

    The seed throws on a refused SysMap; goheap reports it, and the caller turns it into an
    out-of-memory error. A backend's ``map_limit`` (h[H_SYSMAP_LIMIT]) refuses here too.
    """
    limit = rt.h[H_SYSMAP_LIMIT]
    if limit >= 0 and rt.h[H_SYS_MAPPED] + nbytes > limit:
        return False
    if os_mprotect(addr, nbytes, PROT_READ | PROT_WRITE) != 0:
        return False
    rt.h[H_SYS_MAPPED] += nbytes
    rt.mstats[ST_SYS] += nbytes
    return True


@jit
def sys_unused(rt, addr, nbytes):
    """Ready → Released (SysUnused, from compiled code): madvise DONTNEED; Sys is unchanged."""
    os_madvise(addr, nbytes, MADV_DONTNEED)


def resident_bytes(addr: int, nbytes: int) -> int:
    """How much of [addr, addr+nbytes) is paged in (mincore), in whole OS pages; a query, no transition.

    The range is widened to whole pages. Reserved pages count as not resident.
    """
    if nbytes <= 0:
        return 0
    start = addr & ~4095
    npages = (addr + nbytes - start + 4095) >> 12
    vec = np.zeros(npages, np.uint8)
    if _libc.mincore(start, npages << 12, vec.ctypes.data) != 0:
        return 0
    return int(np.count_nonzero(vec & 1)) << 12


def metadata_array(sysmem: SysMem, shape, dtype) -> np.ndarray:
    """Zeroed, lazily paged memory for heap metadata, as an array of ``shape``.

    Not charged to Sys: the seed's own accounting for the structures it stands in for
    (the MHeap record, FixAlloc chunks) is charged where the seed charges it.
    """
    dt = np.dtype(dtype)
    shape = tuple(int(n) for n in (shape if isinstance(shape, tuple) else (shape,)))
    nbytes = int(np.prod(shape)) * dt.itemsize
    nbytes = max((nbytes + 4095) & ~4095, 4096)
    p = sysmem.backend.alloc(nbytes)
    if not p:
        raise OutOfMemory(f"cannot allocate {nbytes} bytes of heap metadata")
    sysmem._owned.append((p, nbytes))
    flat = array_at(p, nbytes, dt)
    return flat[: int(np.prod(shape))].reshape(shape)
