"""Columns that grow chunk by chunk, in memory or spilled to files: what importers fill.

An importer appends a chunk of rows at a time (numpy arrays, one per column). In memory
the chunks are kept and concatenated at the end; with a spill directory each chunk is
written to one file per column at once and only the row count stays in memory, so an
import of any length runs in the memory of one chunk. Either way the result can be read
back as arrays (:meth:`SpilledColumns.arrays`) or streamed block by block into
:func:`goheap.trace.tracefile.write_trace_file` (:meth:`SpilledColumns.members`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import IO

import numpy as np

__all__ = ["SpilledColumns"]


class SpilledColumns:
    """Named columns of fixed dtypes, appended to in chunks (see the module docstring)."""

    def __init__(self, dtypes: Mapping[str, np.dtype], spill_dir: str | os.PathLike[str] | None = None) -> None:
        self.dtypes = {name: np.dtype(dt) for name, dt in dtypes.items()}
        self.n = 0
        self._chunks: dict[str, list[np.ndarray]] = {name: [] for name in self.dtypes}
        self._files: dict[str, IO[bytes]] | None = None
        if spill_dir is not None:
            self._files = {}
            try:
                for name in self.dtypes:
                    self._files[name] = open(os.path.join(spill_dir, f"{name}.bin"), "w+b")  # noqa: SIM115
            except BaseException:
                self.close()
                raise

    def append(self, **columns: np.ndarray) -> None:
        """Add a chunk: every column, all of the same length."""
        lengths = {len(a) for a in columns.values()}
        if set(columns) != set(self.dtypes) or len(lengths) != 1:
            raise ValueError(f"a chunk needs the columns {sorted(self.dtypes)}, all of one length")
        n = lengths.pop()
        if n == 0:
            return
        for name, a in columns.items():
            a = np.ascontiguousarray(a, dtype=self.dtypes[name])
            if self._files is None:
                self._chunks[name].append(a)
            else:
                self._files[name].write(memoryview(a).cast("B"))
        self.n += n

    def arrays(self) -> dict[str, np.ndarray]:
        """Every column as one read-only array (in memory or read back from the files)."""
        out = {}
        for name, dtype in self.dtypes.items():
            if self._files is None:
                parts = self._chunks[name]
                a = np.concatenate(parts) if parts else np.empty(0, dtype)
            else:
                f = self._files[name]
                f.flush()
                f.seek(0)
                a = np.frombuffer(f.read(), dtype=dtype).copy()
            a.flags.writeable = False
            out[name] = a
        return out

    def members(self, block_bytes: int = 1 << 20) -> dict[str, tuple[int, Iterable[bytes | memoryview]]]:
        """Each column as ``(rows, blocks)`` for :func:`~goheap.trace.tracefile.write_trace_file`."""

        def spilled(f: IO[bytes]) -> Iterable[bytes]:
            f.flush()
            f.seek(0)
            while block := f.read(block_bytes):
                yield block

        def kept(parts: list[np.ndarray]) -> Iterable[memoryview]:
            for a in parts:
                yield memoryview(a).cast("B")

        if self._files is None:
            return {name: (self.n, kept(self._chunks[name])) for name in self.dtypes}
        return {name: (self.n, spilled(f)) for name, f in self._files.items()}

    def close(self) -> None:
        for f in (self._files or {}).values():
            f.close()
