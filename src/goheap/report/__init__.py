"""Reports produced from goheap heap state (pprof heap profiles)."""
