"""The filesystem source: reads a file or a directory tree of csv, json or parquet files."""

from __future__ import annotations

import bisect
import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from streamsql.connectors.base import Source
from streamsql.connectors.formats.common import Chunk, ReadSpec
from streamsql.connectors.formats.csv_reader import read_csv_chunks
from streamsql.connectors.formats.json_reader import read_json_chunks
from streamsql.connectors.formats.parquet_reader import read_parquet_chunks
from streamsql.connectors.read_ahead import ReadAhead
from streamsql.errors import ConfigError

ChunkReader = Callable[[str, ReadSpec, Mapping[str, int]], Iterator[Chunk]]

READERS: dict[str, ChunkReader] = {
    "csv": read_csv_chunks,
    "json": read_json_chunks,
    "parquet": read_parquet_chunks,
}


def list_files(path: str) -> list[str]:
    """The files under ``path`` in sorted path order, hidden ones ('.x', '_x') left out.

    A path naming a file is that one file.
    """
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise ConfigError(f"path '{path}' does not exist", option="path")
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not _hidden(d)]
        rel = os.path.relpath(root, path)
        for name in files:
            if not _hidden(name):
                found.append(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
    return [os.path.join(path, rel) for rel in sorted(found)]


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


class FileSource(Source):
    """Reads the files of one source instance (file i goes to instance i mod parallelism).

    Files are read one after the other and a batch never holds rows of two files. The
    position is the file (index and path) and the place in it: byte offset and line for
    csv/json, row number for parquet.

    With more instances than files, parquet files are shared: the instances that file i
    goes to (those with index mod the number of files equal to i) read it in parallel. The
    file is cut into blocks of whole row groups (at least one group and a batch per sharer),
    and each block into one stripe per sharer, at row-group boundaries (a block of fewer
    groups than sharers is cut by rows): an instance reads its stripe of every block. So the
    instances move through the file (and its event time) side by side, rather than one
    starting at the middle, and downstream operators hold less state for the one behind;
    and cutting at group boundaries spares an instance decoding rows that are not its own.
    """

    bounded = True

    def __init__(self, path: str, fmt: str, spec: ReadSpec, instance: int, parallelism: int):
        super().__init__()
        self.path = path
        self.spec = dataclasses.replace(spec, threads=parallelism == 1)
        self.spec.counters = self.counters  # the readers count skipped rows here
        self.reader = READERS[fmt]
        self.fmt = fmt
        self.instance, self.parallelism = instance, parallelism
        #: By file index: the stripes [first, end) of a shared file this instance reads (None:
        #: the file is not shared), worked out once per file; and the stripe being read.
        self._stripes: dict[int, list[tuple[int, int]] | None] = {}
        self._stripe: tuple[int, int] | None = None
        self.files: list[str] | None = None
        self._file = 0  # index into self.files of the file being read
        self._inner: dict[str, int] = {}  # where in that file the next read starts
        self._chunks: Iterator[Chunk] | None = None
        self._chunk: Chunk | None = None
        self._taken = 0

    def open(self) -> None:
        if self.files is None:
            self.files = list_files(self.path)
            self._file = self._next_mine(0)

    def read(self) -> pa.RecordBatch | None:
        self.open()
        assert self.files is not None
        while True:
            chunk = self._chunk
            if chunk is not None and self._taken < chunk.batch.num_rows:
                n = min(self.spec.batch_size, chunk.batch.num_rows - self._taken)
                batch = chunk.batch.slice(self._taken, n)
                self._taken += n
                self._inner = chunk.position_after(self._taken)
                self.counters["rows_read"] += n
                return batch
            if chunk is not None:
                self._inner, self._chunk = dict(chunk.end), None
            if self._file >= len(self.files) and not self._more():
                return self._idle()
            if self._chunks is None:
                stripes = self._shared_stripes(self._file)
                self._stripe = self._enter_stripe(stripes)
                if stripes is not None and self._stripe is None:
                    self._file, self._inner = self._next_mine(self._file + 1), {}
                    continue  # no stripe left in this file
                chunks = self.reader(self.files[self._file], self.spec, self._inner)
                self._chunks = ReadAhead(chunks) if self.spec.read_ahead else chunks
            nxt = self._clip(next(self._chunks, None))
            if nxt is not None:
                self._chunk, self._taken = nxt, 0
                continue
            self._drop_reader()
            if self._stripe is not None:
                self._inner = {"row": self._stripe[1]}  # on to the next stripe, if any
            else:
                self._file, self._inner = self._next_mine(self._file + 1), {}

    def position(self) -> dict[str, Any]:
        self.open()
        assert self.files is not None
        done = self._file >= len(self.files)
        return {"file": self._file, "path": None if done else self._rel(self._file), **self._inner}

    def seek(self, position: Mapping[str, Any]) -> None:
        self.open()
        assert self.files is not None
        rels = [self._rel(i) for i in range(len(self.files))]
        path = position.get("path")
        if path in rels:
            index, keep = rels.index(path), True
        elif path is not None:
            # The file is gone: go on with the next one in path order.
            index, keep = bisect.bisect_right(rels, path), False
        else:
            index, keep = int(position.get("file", len(self.files))), False
        self._drop_reader()
        self._file = self._next_mine(index)
        keep = keep and self._file == index
        self._inner = {
            k: int(position[k]) for k in ("offset", "line", "row") if keep and k in position
        }

    def close(self) -> None:
        self._drop_reader()
        self.spec.close()

    def _more(self) -> bool:
        """Whether files were added after the last one was read (never, for a bounded read)."""
        return False

    def _idle(self) -> pa.RecordBatch | None:
        """What read() returns when every file is read: None, the end of a bounded input."""
        return None

    def _drop_reader(self) -> None:
        if self._chunks is not None:
            close = getattr(self._chunks, "close", None)
            if close:
                close()
        self._chunks, self._chunk, self._taken = None, None, 0

    def _next_mine(self, index: int) -> int:
        """The first file at or after ``index`` that this instance reads."""
        assert self.files is not None
        while index < len(self.files) and not self._mine(index):
            index += 1
        return min(index, len(self.files))

    def _mine(self, index: int) -> bool:
        assert self.files is not None
        if self._shares():
            return index == self.instance % len(self.files)
        return index % self.parallelism == self.instance

    def _shares(self) -> bool:
        """Whether instances share files: more of them than files, of a splittable format."""
        assert self.files is not None
        return self.bounded and self.fmt == "parquet" and 0 < len(self.files) < self.parallelism

    def _shared_stripes(self, index: int) -> list[tuple[int, int]] | None:
        """This instance's stripes [first, end) of the rows of a shared file, or None."""
        if index not in self._stripes:
            self._stripes[index] = self._cut_stripes(index)
        return self._stripes[index]

    def _cut_stripes(self, index: int) -> list[tuple[int, int]] | None:
        assert self.files is not None
        if not self._shares():
            return None
        n = len(self.files)
        sharers = len(range(index, self.parallelism, n))
        meta = pq.ParquetFile(self.files[index]).metadata
        sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        share = self.instance // n
        stripes = []
        for block in _blocks(sizes, sharers, self.spec.batch_size * sharers):
            cuts = _cuts(block, sharers)
            if cuts[share + 1] > cuts[share]:
                stripes.append((cuts[share], cuts[share + 1]))
        return stripes

    def _enter_stripe(self, stripes: list[tuple[int, int]] | None) -> tuple[int, int] | None:
        """The stripe of ``stripes`` the next read falls in (a position between stripes goes
        to the next one), with ``_inner`` set to start there; None when this instance's part
        of the file is read (or the file is not shared).
        """
        if stripes is None:
            return None
        row = int(self._inner.get("row", 0))
        for first, end in stripes:
            if end > row:
                self._inner = {"row": max(row, first)}
                return first, end
        return None

    def _clip(self, chunk: Chunk | None) -> Chunk | None:
        """The chunk's rows that fall in this instance's stripe of a shared file."""
        if chunk is None or self._stripe is None:
            return chunk
        end = self._stripe[1]
        if chunk.first_row >= end:
            return None
        if chunk.first_row + chunk.batch.num_rows <= end:
            return chunk
        kept = chunk.batch.slice(0, end - chunk.first_row)
        return dataclasses.replace(chunk, batch=kept, end={"row": end})

    def _rel(self, i: int) -> str:
        assert self.files is not None
        return self._relpath(self.files[i])

    def _relpath(self, file: str) -> str:
        """A file's path relative to the table's path ('/' separated), as positions name it."""
        if os.path.isfile(self.path):
            return os.path.basename(self.path)
        return os.path.relpath(file, self.path).replace(os.sep, "/")


def _blocks(sizes: list[int], sharers: int, min_rows: int) -> list[list[tuple[int, int]]]:
    """Consecutive row groups, as (first row, end row), gathered into blocks of at least
    ``sharers`` groups and ``min_rows`` rows (the last block may hold fewer).
    """
    blocks: list[list[tuple[int, int]]] = []
    block: list[tuple[int, int]] = []
    first = 0
    for size in sizes:
        block.append((first, first + size))
        first += size
        if len(block) >= sharers and block[-1][1] - block[0][0] >= min_rows:
            blocks.append(block)
            block = []
    if block:
        blocks.append(block)
    return blocks


def _cuts(block: list[tuple[int, int]], sharers: int) -> list[int]:
    """Where a block's stripes begin and end (``sharers + 1`` rows, non-decreasing): at the
    row-group boundaries nearest an even split, or by rows when the block has fewer groups
    than sharers.
    """
    first, end = block[0][0], block[-1][1]
    even = [first + (end - first) * k // sharers for k in range(sharers + 1)]
    if len(block) < sharers:
        return even
    bounds = [b for _, b in block[:-1]]
    cuts = [first]
    for ideal in even[1:-1]:
        nearest = min(bounds, key=lambda b: (abs(b - ideal), b))
        cuts.append(max(nearest, cuts[-1]))
    return [*cuts, end]
