"""Columns that grow chunk by chunk, in memory or spilled to files: what importers fill.

An importer appends a chunk of rows at a time (numpy arrays, one per column). The chunks
are kept in memory; with a spill directory, once they hold more than ``memory_bytes``
they go to one file per column, and so does every chunk after them, so an import of any
length runs in that much memory plus one chunk (and a short one never touches the disk).
Either way the result can be read back as arrays (:meth:`SpilledColumns.arrays`) or
streamed block by block into :func:`goheap.trace.tracefile.write_trace_file`
(:meth:`SpilledColumns.members`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import IO

import numpy as np

__all__ = ["MEMORY_BYTES", "SpilledColumns"]

#: How many bytes of chunks a SpilledColumns with a spill directory keeps before spilling.
MEMORY_BYTES = 64 << 20


class SpilledColumns:
    """Named columns of fixed dtypes, appended to in chunks (see the module docstring).

    :meth:`append` may keep the arrays it is given: the caller must not change them.
    """

    def __init__(
        self,
        dtypes: Mapping[str, np.dtype],
        spill_dir: str | os.PathLike[str] | None = None,
        memory_bytes: int = MEMORY_BYTES,
    ) -> None:
        self.dtypes = {name: np.dtype(dt) for name, dt in dtypes.items()}
        self.n = 0
        self._chunks: dict[str, list[np.ndarray]] = {name: [] for name in self.dtypes}
        self._kept_bytes = 0
        self._spill_dir = spill_dir
        self._memory_bytes = memory_bytes
        self._files: dict[str, IO[bytes]] | None = None

    def append(self, **columns: np.ndarray) -> None:
        """Add a chunk: every column, all of the same length."""
        lengths = {len(a) for a in columns.values()}
        if set(columns) != set(self.dtypes) or len(lengths) != 1:
            raise ValueError(f"a chunk needs the columns {sorted(self.dtypes)}, all of one length")
        n = lengths.pop()
        if n == 0:
            return
        chunk = {name: np.ascontiguousarray(a, dtype=self.dtypes[name]) for name, a in columns.items()}
        for name, a in chunk.items():
            self._chunks[name].append(a)
            self._kept_bytes += a.nbytes
        self.n += n
        if self._files is not None or (self._spill_dir is not None and self._kept_bytes > self._memory_bytes):
            self._spill()

    def _spill(self) -> None:
        """Write the chunks kept so far to the files (opening them the first time)."""
        if self._files is None:
            self._files = {}
            for name in self.dtypes:
                self._files[name] = open(os.path.join(self._spill_dir, f"{name}.bin"), "w+b")  # type: ignore[arg-type]  # noqa: SIM115
        for name, parts in self._chunks.items():
            for a in parts:
                self._files[name].write(a.data.cast("B"))
            parts.clear()
        self._kept_bytes = 0

    def arrays(self) -> dict[str, np.ndarray]:
        """Every column as one read-only array (in memory or read back from the files)."""
        out = {}
        for name, dtype in self.dtypes.items():
            parts = self._chunks[name]
            if self._files is not None:
                f = self._files[name]
                f.flush()
                f.seek(0)
                parts = [np.frombuffer(f.read(), dtype=dtype), *parts]
            a = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.empty(0, dtype)
            if not a.flags.owndata:
                a = a.copy()
            a.flags.writeable = False
            out[name] = a
        return out

    def members(self, block_bytes: int = 1 << 20) -> dict[str, tuple[int, Iterable[bytes | memoryview]]]:
        """Each column as ``(rows, blocks)`` for :func:`~goheap.trace.tracefile.write_trace_file`."""

        def blocks(name: str) -> Iterable[bytes | memoryview]:
            if self._files is not None:
                f = self._files[name]
                f.flush()
                f.seek(0)
                while block := f.read(block_bytes):
                    yield block
            for a in self._chunks[name]:
                yield a.data.cast("B")

        return {name: (self.n, blocks(name)) for name in self.dtypes}

    def close(self) -> None:
        for f in (self._files or {}).values():
            f.close()
