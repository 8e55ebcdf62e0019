"""Implementation of :mod:`goheap.nb.checked`: the compiled API with every argument validated.

Each function has the name, arguments and results of its :mod:`goheap.nb` twin and, given
valid arguments, does exactly what the twin does (it calls it). What the twin reports with
a negative ``E_*`` code it still reports so. What the twin cannot see, and would crash on or
silently corrupt the heap with, raises a goheap error instead:

* a runtime whose heap is closed: :class:`goheap.HeapClosed` (the flag lives in ``h``,
  ordinary Python memory that a closed heap never unmaps, so this check is always safe);
* a cache row the heap did not hand out (``heap.cache()``): :class:`goheap.HeapError`;
* a load or store outside an allocated block, straddling its end, or (words) not at a
  multiple of 8: :class:`goheap.AddressError` naming the address;
* a type id that was never registered, a stack slot outside the thread's stack, a byte
  value outside 0..255, a profile bucket outside the table: :class:`goheap.InvalidValue`.

:mod:`goheap.nb`'s own functions run these when they are called from plain Python (not
from compiled code), so a mistake at the interpreter prompt is an exception, not a crash.
"""

from __future__ import annotations

import inspect

import numpy as np

from . import _jit_api as nb
from ._runtime._jit import checked_from_python, jit, jit_entry
from ._runtime.layout import (
    E_NOT_ALLOCATED,
    E_NOT_IN_HEAP,
    E_OUTSIDE_BLOCK,
    H_CLOSED,
    H_ERR_ARG,
    H_NTYPES,
    LC_INUSE,
    LC_SHADOW_SP,
    RaceRuntime,
    Runtime,
    runtime_ref,
)
from ._runtime.malloc import checked_range
from .errors import AddressError, HeapClosed, HeapError, InvalidValue

# goheap.nb's functions: their twins here, and the names goheap.nb exports
__all__ = [
    "alloc",
    "alloc_noscan",
    "alloc_path",
    "alloc_path_reset",
    "alloc_typed",
    "free",
    "gc",
    "get_root",
    "load",
    "load_byte",
    "lookup",
    "num_gc",
    "pop_root",
    "push_root",
    "race_func_enter",
    "race_func_exit",
    "set_profile_bucket",
    "set_root",
    "set_shadow_depth",
    "settype_flush_arrays",
    "shadow_depth",
    "stack_load",
    "stack_release",
    "stack_reserve",
    "stack_store",
    "store",
    "store_byte",
]


@jit
def _hex(v):
    """v (>= 0) as 0x-prefixed hex: numba has no hex()."""
    digits = "0123456789abcdef"
    s = ""
    while True:
        s = digits[v & 15] + s
        v >>= 4
        if v <= 0:
            return "0x" + s


@jit
def _open(r):
    if r.h[H_CLOSED] != 0:
        raise HeapClosed("goheap.nb: the heap of this runtime is closed")


@jit
def _cache(r, c):
    _open(r)
    if c < 0 or c >= r.cache_local.shape[0] or r.cache_local[c, LC_INUSE] == 0:
        raise HeapError("goheap.nb: " + str(c) + " is not a cache row of this heap (use heap.cache())")


@jit
def _access(r, addr, nbytes, align):
    _open(r)
    err = checked_range(r, addr, nbytes, align)
    if err == 0:
        return
    a = _hex(r.h[H_ERR_ARG])
    if err == E_NOT_IN_HEAP:
        raise AddressError("goheap.nb: address " + a + " is outside the heap")
    if err == E_NOT_ALLOCATED:
        raise AddressError("goheap.nb: address " + a + " is not in an allocated block")
    if err == E_OUTSIDE_BLOCK:
        raise AddressError("goheap.nb: " + str(nbytes) + " bytes at " + a + " run past the end of its block")
    raise AddressError("goheap.nb: address " + a + " is not a multiple of " + str(align))


@jit
def _slot(i, limit, what):
    if i < 0 or i >= limit:
        raise InvalidValue("goheap.nb: " + what + " " + str(i) + " is outside 0.." + str(limit - 1))


@jit_entry
def alloc(rt, c, size):
    _cache(runtime_ref(rt), c)
    return nb.alloc(rt, c, size)


@jit_entry
def alloc_noscan(rt, c, size):
    _cache(runtime_ref(rt), c)
    return nb.alloc_noscan(rt, c, size)


@jit_entry
def alloc_path(rt, c):
    _cache(runtime_ref(rt), c)
    return nb.alloc_path(rt, c)


@jit_entry
def alloc_path_reset(rt, c):
    _cache(runtime_ref(rt), c)
    nb.alloc_path_reset(rt, c)


@jit_entry
def num_gc(rt):
    _open(runtime_ref(rt))
    return nb.num_gc(rt)


@jit_entry
def settype_flush_arrays(rt, c):
    _cache(runtime_ref(rt), c)
    return nb.settype_flush_arrays(rt, c)


@jit_entry
def alloc_typed(rt, c, size, type_id, array):
    r = runtime_ref(rt)
    _cache(r, c)
    if type_id < 0 or type_id >= r.h[H_NTYPES]:
        raise InvalidValue("goheap.nb: type id " + str(type_id) + " is not registered with this heap")
    return nb.alloc_typed(rt, c, size, type_id, array)


@jit_entry
def free(rt, c, v):
    _cache(runtime_ref(rt), c)
    return nb.free(rt, c, v)


@jit_entry
def gc(rt, c):
    _cache(runtime_ref(rt), c)
    return nb.gc(rt, c)


@jit_entry
def lookup(rt, c, v):
    _cache(runtime_ref(rt), c)
    return nb.lookup(rt, c, v)


@jit_entry
def load(rt, addr):
    _access(runtime_ref(rt), addr, 8, 8)
    return nb.load(rt, addr)


@jit_entry
def store(rt, addr, value):
    _access(runtime_ref(rt), addr, 8, 8)
    nb.store(rt, addr, value)


@jit_entry
def load_byte(rt, addr):
    _access(runtime_ref(rt), addr, 1, 1)
    return nb.load_byte(rt, addr)


@jit_entry
def store_byte(rt, addr, value):
    r = runtime_ref(rt)
    _access(r, addr, 1, 1)
    _slot(value, 256, "byte value")
    nb.store_byte(rt, addr, value)


@jit_entry
def race_func_enter(rt, fn):
    r = runtime_ref(rt)
    _open(r)
    _slot(fn, 1 << 31, "function id")
    nb.race_func_enter(rt, fn)


@jit_entry
def race_func_exit(rt):
    _open(runtime_ref(rt))
    nb.race_func_exit(rt)


@jit_entry
def push_root(rt, c, v):
    _cache(runtime_ref(rt), c)
    return nb.push_root(rt, c, v)


@jit_entry
def pop_root(rt, c):
    _cache(runtime_ref(rt), c)
    return nb.pop_root(rt, c)


@jit_entry
def set_root(rt, c, slot, v):
    _cache(runtime_ref(rt), c)
    return nb.set_root(rt, c, slot, v)


@jit_entry
def get_root(rt, c, slot):
    _cache(runtime_ref(rt), c)
    return nb.get_root(rt, c, slot)


@jit_entry
def shadow_depth(rt, c):
    _cache(runtime_ref(rt), c)
    return nb.shadow_depth(rt, c)


@jit_entry
def set_shadow_depth(rt, c, depth):
    _cache(runtime_ref(rt), c)
    nb.set_shadow_depth(rt, c, depth)  # it ignores a depth outside 0..the current one


@jit_entry
def stack_reserve(rt, c, nwords):
    r = runtime_ref(rt)
    _cache(r, c)
    _slot(nwords, r.shadow.shape[1] + 1, "frame size")
    return nb.stack_reserve(rt, c, nwords)


@jit_entry
def stack_release(rt, c, base):
    r = runtime_ref(rt)
    _cache(r, c)
    _slot(base, r.cache_local[c, LC_SHADOW_SP] + 1, "frame base")
    nb.stack_release(rt, c, base)


@jit_entry
def stack_load(rt, c, i):
    r = runtime_ref(rt)
    _cache(r, c)
    _slot(i, r.shadow.shape[1], "stack word")
    return nb.stack_load(rt, c, i)


@jit_entry
def stack_store(rt, c, i, v):
    r = runtime_ref(rt)
    _cache(r, c)
    _slot(i, r.shadow.shape[1], "stack word")
    nb.stack_store(rt, c, i, v)


@jit_entry
def set_profile_bucket(rt, bucket):
    r = runtime_ref(rt)
    _open(r)
    _slot(bucket, r.prof.shape[0], "profile bucket")
    nb.set_profile_bucket(rt, bucket)


# ---------------------------------------------------------------- goheap.nb called from Python

_FLAGS = {"array"}  # arguments that may be a bool
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _python_call(name: str, checked):
    """What a call of ``goheap.nb.<name>`` from Python runs: argument types, then the checked twin."""
    signature = inspect.signature(getattr(checked, "py_func", checked))

    def call(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidValue(f"goheap.nb.{name}{signature}: {exc}") from None
        rt, *rest = bound.arguments.items()
        if not isinstance(rt[1], (Runtime, RaceRuntime)):
            raise HeapError(f"goheap.nb.{name}: {rt[1]!r} is not a heap's runtime (use heap.runtime)")
        ints = []
        for param, value in rest:
            if isinstance(value, (bool, np.bool_)) and param not in _FLAGS or not isinstance(value, (int, np.integer)):
                raise InvalidValue(f"goheap.nb.{name}: {param} must be an int, not {value!r}")
            if not _INT64_MIN <= int(value) <= _INT64_MAX:
                raise InvalidValue(f"goheap.nb.{name}: {param} {value} does not fit in 64 bits")
            ints.append(int(value))
        return checked(rt[1], *ints)

    call.__name__ = call.__qualname__ = name
    return call


def check_python_calls(functions: dict) -> None:
    """Make each goheap.nb function in ``functions``, called from Python, validate its arguments and run its checked twin."""
    for name in __all__:
        checked_from_python(functions[name], _python_call(name, globals()[name]))
