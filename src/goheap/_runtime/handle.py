"""A heap's runtime as one integer, for the cheapest calls from Python into compiled code.

See :mod:`goheap._runtime.malloc` for the overview. Handing a ``Runtime`` StructRef from
Python to a compiled function costs more than an allocation (the dispatcher inspects the
proxy object); handing over an integer costs a third of that. The shell therefore passes
the address of the Runtime's fields and :func:`runtime_at` turns it back into a
``RuntimeRef`` (see ``layout.py``) inside compiled code, with no reference counting at all.

The ``Heap`` keeps the Runtime proxy, and so the fields, alive for as long as any call
may use the handle. Interpreted (NUMBA_DISABLE_JIT) the handle is a key into a registry.
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._jit import jit
from .layout import RUNTIME_REF_TYPE

_registry: dict[int, object] = {}


if numba.config.DISABLE_JIT:

    def handle_of(rt) -> int:
        _registry[id(rt)] = rt
        return id(rt)

    def forget_handle(handle: int) -> None:
        _registry.pop(handle, None)

    def runtime_at(handle):
        return _registry[int(handle)]

else:

    @intrinsic
    def _ref_from_address(typingctx, addr):
        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], ir.IntType(8).as_pointer())

        return RUNTIME_REF_TYPE(types.int64), codegen

    def handle_of(rt) -> int:
        """The integer handle of a Runtime proxy (the address of its fields, what runtime_ref
        takes inside compiled code); the caller keeps ``rt`` alive."""
        return int(rt._meminfo.data)

    def forget_handle(handle: int) -> None:
        """Nothing to undo: the handle holds no reference."""

    @jit
    def runtime_at(handle):
        """The RuntimeRef whose fields are at ``handle``."""
        return _ref_from_address(handle)
