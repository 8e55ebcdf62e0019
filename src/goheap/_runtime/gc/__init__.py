"""The collector: mgc0.c and mfinal.c. See :mod:`goheap._runtime.malloc` for the allocator.

A stop-the-world, non-moving mark-sweep collector over the heap bitmap, mostly
conservative, as in the seed. One collection (``collect.gc``):

1. *Trigger.* mallocgc calls it when the lagging heap_alloc reaches next_gc (next_gc
   starts at 0, so the first allocation after start-up collects); ``Heap.gc()``, the
   finalizer runner and the scavenger force one. GOGC=off disables all of them.
2. *Stop the world.* Nothing else runs (the GIL is held throughout). Every cache's
   buffered settype calls are flushed into the span type arrays.
3. *Roots* (``mark.markroots``): registered global regions, the span type arrays, each
   thread's shadow stack and the explicit root handles (all conservative, like the
   seed's goroutine stacks), the contents of objects with finalizers (not the objects
   themselves), and the arguments of queued finalizers.
4. *Mark* (``mark.scanblock``): a work list of blocks. A block with a type is scanned
   precisely (only its pointer words), any other conservatively (every word that falls
   inside the arena). A candidate pointer is resolved to its block start through the
   bitmap (a short backward scan within one bitmap word) or the span map, and marked if
   allocated; no-pointer blocks are marked but not queued.
5. *Sweep* (``sweep.sweepspan``): every span in allspans, objects in address order.
   Marked blocks are unmarked and kept. Unmarked blocks with a finalizer are queued for
   it and kept one more cycle; sampled ones are charged to the profile; the rest are
   freed: small objects in one chain per span to the MCentral, large spans to the heap.
6. *Caches and stats.* Every cache gives all its free objects back to the MCentrals;
   every cache's stats are folded into MStats.
7. *Pacing.* next_gc = heap_alloc + heap_alloc * GOGC / 100, in integer arithmetic.
8. *Record.* last_gc, the pause ring, NumGC, one gctrace row; the profile's recent
   counts become totals. Finalizers run afterwards, outside the stop-the-world.
"""
