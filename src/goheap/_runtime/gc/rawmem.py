"""Raw memory access for the collector: loads from any address, and the seed's PREFETCH.

See :mod:`goheap._runtime.gc`. Registered root regions may live outside the heap's
reservation (a numpy array), so they are read through :func:`load_raw`; the mark phase
prefetches each block it queues, as the seed's flushptrbuf does. Interpreted
(NUMBA_DISABLE_JIT) the load goes through ctypes and the prefetch does nothing.
"""

from __future__ import annotations

import ctypes

import numba
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

if numba.config.DISABLE_JIT:

    def load_raw(addr):
        """The int64 word at any readable address (interpreted: through ctypes)."""
        return ctypes.c_int64.from_address(int(addr)).value

    def prefetch(addr):
        """A hint only: nothing to do interpreted."""

else:

    @intrinsic
    def load_raw(typingctx, addr):
        """The int64 word at any readable address. The caller guarantees it is mapped."""

        def codegen(context, builder, signature, args):
            ptr = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
            return builder.load(ptr)

        return types.int64(types.int64), codegen

    @intrinsic
    def prefetch(typingctx, addr):
        """Ask the CPU to bring the cache line at addr in for reading (llvm.prefetch); never faults."""

        def codegen(context, builder, signature, args):
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fn = builder.module.declare_intrinsic("llvm.prefetch", (i8p,), ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]))
            builder.call(fn, [builder.inttoptr(args[0], i8p), i32(0), i32(3), i32(1)])
            return context.get_dummy_value()

        return types.none(types.int64), codegen
