"""The collector: mgc0.c, parfor.c and mfinal.c. See :mod:`goheap._runtime.malloc` for the allocator.

A stop-the-world, non-moving mark-sweep collector over the heap bitmap, mostly
conservative, as in the seed. One collection (``collect.gc``):

1. *Trigger.* mallocgc calls it when the lagging heap_alloc reaches next_gc (next_gc
   starts at 0, so the first allocation after start-up collects); ``Heap.gc()``, the
   finalizer runner, the scavenger and ``free_os_memory`` force one. GOGC=off (a negative
   gcpercent) disables all of them. GOGCTRACE >= 2 adds a forced collection after each
   automatic one.
2. *Stop the world.* Nothing else runs (the GIL is held throughout). Every cache's
   buffered settype calls are flushed into the span type arrays.
3. *Roots* (``roots.addroots``), in the seed's order: the explicit root handles (its
   data), registered regions (its bss), the span type arrays, each thread's shadow stack
   (a goroutine stack), the contents of objects with finalizers (not the objects
   themselves), and the FinBlocks of queued finalizers.
4. *Mark* (``mark``): a parallel for over the roots (``parfor``); each root is scanned
   into a fresh Workbuf and the Workbuf drained; then every proc drains ``work.full``
   until all of them wait. Scanning stages the words that point into the arena; a flush
   resolves each to its block start through the bitmap (a short backward scan within one
   bitmap word) or the span map, marks the allocated unmarked ones and queues those with
   pointers. A block whose span records a type is scanned precisely, any other
   conservatively; no-pointer blocks are marked but never scanned. With several procs
   (``gchelper``) they run interleaved deterministically, handing off and stealing work.
5. *Sweep* (``sweep.sweepspan``): a parallel for over allspans, objects in address order.
   Marked blocks are unmarked and kept. Unmarked blocks with a finalizer are queued for
   it and kept one more cycle (``finalizers.handlespecial``); sampled ones are charged to
   the profile; the rest are freed: small objects in one chain per span to the MCentral,
   large spans to the heap.
6. *Caches and stats.* Every cache gives all its free objects back to the MCentrals;
   every cache's stats and every proc's handoff and yield counts are folded in.
7. *Pacing.* next_gc = heap_alloc + heap_alloc * gcpercent / 100, in integer arithmetic.
8. *Record.* last_gc, the pause ring, NumGC, one gctrace row; the profile's recent
   counts become totals. Finalizers run afterwards, outside the stop-the-world, and a
   forced collection follows each batch of them.
"""
