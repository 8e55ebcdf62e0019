"""The Python shell's parts, assembled into :class:`goheap.Heap` by :mod:`goheap.heap`.

args (the checks of every number a public call takes), config (HeapConfig, readgogc,
TypeInfo), lifetime (close() against other threads' calls; views and runtimes that
outlive a heap), roots (RootSet: handles and regions), scope (handle scopes and Refs),
profiling (stacks, buckets, heap profiles), finalizers (SetFinalizer and the queue's
runner) and scavenger (the clock, the scavenger's rounds, FreeOSMemory). Each part that
adds methods to Heap is a mixin class over the attributes Heap.__init__ sets, which state
(HeapState, the mixins' base) declares with their types.
"""
