"""Reports on a heap, in the ecosystem's formats.

- :mod:`goheap.report.pprof`: heap profiles in pprof's profile.proto (``go tool pprof``);
  :meth:`goheap.Heap.write_heap_profile` writes one.
- :mod:`goheap.report.html`: the HTML report (``goheap run ... --report``), built from a
  :class:`goheap.inspect.History`, with figures from :mod:`goheap.report.plots`.
- :mod:`goheap.report.browser`: render an HTML file in headless Chromium (a screenshot and
  the console's errors), for the report's tests and the README's picture.
"""
