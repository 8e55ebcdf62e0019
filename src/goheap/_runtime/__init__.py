"""The runtime proper: one module per file of the 2013 ``src/pkg/runtime``.

See :mod:`goheap._runtime.malloc` for the overview.
"""
