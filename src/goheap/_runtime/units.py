"""Units: parts of the runtime compiled once, which other compiled code calls by address.

See :mod:`goheap._runtime.malloc` for the overview. numba links the machine code of every
callee into each compiled caller and optimises it again there, so without units every
entry point that can trigger a collection would carry, and compile, its own copy of the
whole collector. A unit stops that: its function is compiled (and cached) once, the heap
records its address in ``rt.code`` when it is built, and callers reach it with
:func:`call_unit`, an indirect call that links nothing. Calls into a unit are rare
(a collection) or the slow path of a check (the race detector's), so the indirect call
costs nothing measurable; what it saves is most of the first run's compile time.

A heap loads only the units it can reach: the collector always, the interleaved collector
(nproc > 1) and the race detector only when it was built for them, so a plain run never
compiles them. Every unit takes ``(rt, a, b, c)`` (a RuntimeRef and three int64) and
returns an int64; a unit with several operations takes the operation in ``a``.

Interpreted (NUMBA_DISABLE_JIT), ``rt.code`` holds keys into a table of the functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .layout import RUNTIME_REF_TYPE

__all__ = [
    "N_UNITS", "SIGNATURES", "UNIT_GC", "UNIT_GC_PROCS", "UNIT_MARK", "UNIT_MHEAP_ALLOC", "UNIT_MHEAP_FREE", "UNIT_RACE",
    "call_unit", "unit_address",
]

_RT, _INT, _BOOL = RUNTIME_REF_TYPE, types.int64, types.boolean

UNIT_GC = 0  # runtime.gc: collect.gc_unit
UNIT_GC_PROCS = 1  # mark and sweep with several procs: gchelper.gc_procs_unit (heaps with nproc > 1)
UNIT_RACE = 2  # the race detector's hooks: race.race_unit (heaps in race mode)
UNIT_MHEAP_ALLOC = 3  # MHeap_Alloc: mheap.mheap_alloc_unit
UNIT_MHEAP_FREE = 4  # MHeap_Free: mheap.mheap_free_unit
UNIT_MARK = 5  # the mark phase with one proc: gc.mark.mark_serial_unit
N_UNITS = 8

#: Each unit's signature: its machine code is compiled for exactly this, and callers' arguments are cast to it.
SIGNATURES = {
    UNIT_GC: _BOOL(_RT, _INT, _BOOL),  # (c, force) -> ran
    UNIT_GC_PROCS: _INT(_RT, _INT, _INT),  # (c, nproc) -> time mark ended
    UNIT_RACE: _INT(_RT, _INT, _INT, _INT),  # (hook, a, b) -> 0
    UNIT_MHEAP_ALLOC: _INT(_RT, _INT, _INT, _INT, _BOOL, _BOOL),  # (c, npage, sizeclass, acct, zeroed) -> span
    UNIT_MHEAP_FREE: types.none(_RT, _INT, _INT, _BOOL),  # (c, s, acct)
    UNIT_MARK: types.none(_RT, _INT),  # (nroot)
}

_interpreted: dict[int, Callable[..., Any]] = {}


def unit_address(slot: int, dispatcher) -> int:
    """The address of unit ``slot``'s machine code (``dispatcher`` compiled for its signature, or loaded from the cache).

    Interpreted, a key that :func:`call_unit` resolves to the function itself.
    """
    if numba.config.DISABLE_JIT:
        key = len(_interpreted) + 1
        _interpreted[key] = dispatcher
        return key
    signature = SIGNATURES[slot]
    dispatcher.compile(signature)
    result = dispatcher.overloads[signature.args]
    return result.library.get_pointer_to_function(result.fndesc.llvm_func_name)


if numba.config.DISABLE_JIT:

    def call_unit(address, slot, rt, *args):
        return _interpreted[int(address)](rt, *args)

else:

    @intrinsic
    def call_unit(typingctx, address, slot, rt, *args):
        """Call unit ``slot`` at ``address`` (``rt.code[slot]``) with (rt, *args); rt is a RuntimeRef.

        The arguments are cast to the unit's signature; the call follows numba's own
        convention, so an exception raised in the unit propagates as from any compiled callee.
        """
        if not isinstance(slot, types.IntegerLiteral):
            return None
        unit = SIGNATURES[slot.literal_value]
        rest = unit.args[1:]
        if len(args) != len(rest):
            return None
        sig = unit.return_type(types.int64, slot, unit.args[0], types.Tuple(rest))

        def codegen(context, builder, signature, llargs):
            values = [llargs[2], *cgutils.unpack_tuple(builder, llargs[3], len(rest))]
            fnty = context.call_conv.get_function_type(unit.return_type, unit.args)
            fn = builder.inttoptr(llargs[0], fnty.as_pointer())
            status, result = context.call_conv.call_function(builder, fn, unit.return_type, unit.args, values)
            with cgutils.if_unlikely(builder, status.is_error):
                context.call_conv.return_status_propagate(builder, status)
            return result

        return sig, codegen
