"""The Python shell's parts, assembled into :class:`goheap.Heap` by :mod:`goheap.heap`.

config (HeapConfig, readgogc, TypeInfo), roots (RootSet: handles and regions),
profiling (stacks, buckets, heap profiles), finalizers (SetFinalizer and the queue's
runner) and scavenger (the clock, the scavenger's rounds, FreeOSMemory). Each part that
adds methods to Heap is a mixin class over the attributes Heap.__init__ sets.
"""
