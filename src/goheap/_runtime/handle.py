"""A heap's runtime as one integer, for the cheapest calls from Python into compiled code.

See :mod:`goheap._runtime.malloc` for the overview. Handing a ``Runtime`` StructRef from
Python to a compiled function costs more than an allocation (the dispatcher inspects the
proxy object); handing over an integer costs a third of that. The shell therefore passes
the address of the StructRef's memory record (its ``meminfo``) and :func:`runtime_at`
turns it back into the Runtime inside compiled code, taking a reference as it does.

The ``Heap`` keeps the Runtime proxy, and so the record, alive for as long as any call
may use the handle. Interpreted (NUMBA_DISABLE_JIT) the handle is a key into a registry.
"""

from __future__ import annotations

import numba
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import jit
from .layout import RUNTIME_TYPE

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
    def _meminfo_address(typingctx, rt):
        def codegen(context, builder, signature, args):
            proxy = cgutils.create_struct_proxy(signature.args[0])(context, builder, value=args[0])
            return builder.ptrtoint(proxy.meminfo, cgutils.intp_t)

        return types.int64(rt), codegen

    @intrinsic
    def _runtime_from_meminfo(typingctx, addr):
        def codegen(context, builder, signature, args):
            proxy = cgutils.create_struct_proxy(RUNTIME_TYPE)(context, builder)
            proxy.meminfo = builder.inttoptr(args[0], cgutils.voidptr_t)
            value = proxy._getvalue()
            context.nrt.incref(builder, RUNTIME_TYPE, value)
            return value

        return RUNTIME_TYPE(types.int64), codegen

    @jit
    def _handle_of(rt):
        return _meminfo_address(rt)

    def handle_of(rt) -> int:
        """The integer handle of a Runtime proxy; the caller keeps ``rt`` alive."""
        return int(_handle_of(rt))

    def forget_handle(handle: int) -> None:
        """Nothing to undo: the handle holds no reference."""

    @jit
    def runtime_at(handle):
        """The Runtime whose memory record is at ``handle``."""
        return _runtime_from_meminfo(handle)
