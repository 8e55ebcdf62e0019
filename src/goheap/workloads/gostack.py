"""Go stack frames of 2013, emulated on goheap's per-thread stack: what the ports share.

The seed scans a goroutine's stack conservatively, every word from its top to its base,
dead slots included. The ports keep their roots the same way: each Go function they port
reserves a frame of the size 6g gave it (:func:`goheap.nb.stack_reserve`), writes its
slots when the compiled code did, and leaves them as they are when it returns, so a later
frame at the same address starts with the earlier one's values (see Departure 14 in the
overview essay). A frame is ``[return PC, temporaries..., outgoing argument, outgoing
result]``: the callee reads its arguments from, and writes its result to, the caller's
outgoing words, as Go's calling convention of the time did.
"""

from __future__ import annotations

from .. import nb
from .._runtime._jit import jit

__all__ = ["NODE_LITERAL_FRAME", "RETURN_PC", "new_object", "node_literal_tree"]

RETURN_PC = 0x400C00  # a frame's return-address word (or a static type pointer): a text address, never a heap pointer

# ``if depth <= 0 { return new(Node) }; return &Node{f(depth-1), f(depth-1)}``: return PC,
# the two subtrees' temporaries, the outgoing argument and result
NODE_LITERAL_FRAME = 5


@jit
def new_object(rt, c, type_id, size, out, bucket):
    """runtime.new(T) through the outgoing pair at stack word ``out``: argument &T (not a heap
    address), result the new block; its sampled allocation is charged to profile ``bucket``."""
    nb.stack_store(rt, c, out, RETURN_PC)
    nb.set_profile_bucket(rt, bucket)
    n = nb.alloc_typed(rt, c, size, type_id, False)
    nb.stack_store(rt, c, out + 1, n)
    return n


@jit
def node_literal_tree(rt, c, type_id, size, args, buckets):
    """The tree builder both binary-trees' ``bottomUp`` and GCBench's ``makeTree`` are.

    ``depth`` is the caller's outgoing argument at stack word ``args``; the tree's root goes
    to the word after it. As 6g compiled the composite literal, both subtrees are built first
    (each result spilled to a temporary of the frame), then ``runtime.new``: trees are
    allocated in post-order, and while a frame is inside its first call its temporaries
    still hold what an earlier frame left at that address. ``buckets``: the profile buckets
    of the two allocation sites, the literal and the leaf's ``new``.
    """
    b = nb.stack_reserve(rt, c, NODE_LITERAL_FRAME)
    nb.stack_store(rt, c, b, RETURN_PC)
    depth = nb.stack_load(rt, c, args)
    out = b + NODE_LITERAL_FRAME - 2
    if depth > 0:
        nb.stack_store(rt, c, out, depth - 1)
        nb.stack_store(rt, c, b + 1, node_literal_tree(rt, c, type_id, size, out, buckets))
        nb.stack_store(rt, c, out, depth - 1)
        nb.stack_store(rt, c, b + 2, node_literal_tree(rt, c, type_id, size, out, buckets))
    n = new_object(rt, c, type_id, size, out, buckets[0] if depth > 0 else buckets[1])
    if depth > 0:
        nb.store(rt, n, nb.stack_load(rt, c, b + 1))
        nb.store(rt, n + 8, nb.stack_load(rt, c, b + 2))
    nb.stack_store(rt, c, args + 1, n)
    nb.stack_release(rt, c, b)
    return n
