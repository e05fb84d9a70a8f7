"""Watching a directory: the filesystem source when 'source.monitor-interval' is set.

The source reads the files present when it opens (in path order, hidden names skipped as
always), then re-lists the directory every interval and reads the files it has not seen
before, in path order. Each file is read once: a file that changes after it was read is not
read again, and a file still being written may be read half-way. Writers should therefore
write under a hidden name ('.name' or '_name') and rename the finished file into place: a
rename is atomic, and the hidden file is skipped until then.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from streamsql.connectors.formats.common import ReadSpec, make_batch
from streamsql.connectors.fs_source import FileSource, list_files


def file_instance(rel: str, parallelism: int) -> int:
    """The instance that reads a file: a stable hash of its relative path, mod parallelism.

    A file keeps its instance however many files appear before or after it.

    >>> file_instance("2024/03/01/part-0.csv", 1), file_instance("a.csv", 3)
    (0, 1)
    """
    return zlib.crc32(rel.encode()) % parallelism


class MonitoredFileSource(FileSource):
    """An unbounded FileSource: new files are picked up as the directory is re-listed.

    An instance reads the files that ``file_instance`` gives it, in the order it finds them
    (path order within one listing). ``read()`` never waits: with nothing new it returns an
    empty batch, and it lists the directory again only once the interval has passed since
    the last listing. The position names the files already read (``done``) and the file
    being read with the place in it, so a restart neither reads a file twice nor skips one.
    """

    bounded = False

    def __init__(
        self,
        path: str,
        fmt: str,
        spec: ReadSpec,
        instance: int,
        parallelism: int,
        interval_ms: int,
    ) -> None:
        super().__init__(path, fmt, spec, instance, parallelism)
        self.interval_s = interval_ms / 1000
        self._known: set[str] = set()  # relative paths already listed (any instance's) or read
        self._listed = 0.0  # time.monotonic() of the last listing
        empty = [pa.array([], f.type) for f in spec.fields]
        self._empty = make_batch(empty, spec.out_schema, 0)

    def open(self) -> None:
        if self.files is None:
            self.files = []
            self._discover()

    def position(self) -> dict[str, Any]:
        self.open()
        assert self.files is not None
        done = [self._rel(i) for i in range(self._file)]
        current = self._rel(self._file) if self._file < len(self.files) else None
        return {"done": done, "path": current, **self._inner}

    def seek(self, position: Mapping[str, Any]) -> None:
        self.open()
        assert self.files is not None
        done = [str(rel) for rel in position.get("done", ())]
        path = position.get("path")
        finished = set(done)
        listed = [self._rel(i) for i in range(len(self.files))]
        keep = path in listed and path not in finished  # a file that is gone starts nothing
        rest = [rel for rel in listed if rel not in finished and rel != path]
        order = done + ([path] if keep else []) + rest
        self._drop_reader()
        self.files = [self._file_at(rel) for rel in order]
        self._known |= finished
        self._file = len(done)
        self._inner = {
            k: int(position[k]) for k in ("offset", "line", "row") if keep and k in position
        }

    def _more(self) -> bool:
        if time.monotonic() - self._listed < self.interval_s:
            return False
        return self._discover()

    def _idle(self) -> pa.RecordBatch:
        return self._empty

    def _next_mine(self, index: int) -> int:
        assert self.files is not None
        return min(index, len(self.files))  # every queued file is this instance's

    def _discover(self) -> bool:
        """Queue this instance's files not listed before; True if there were any."""
        assert self.files is not None
        self._listed = time.monotonic()
        found = False
        for file in list_files(self.path):
            rel = self._relpath(file)
            if rel in self._known:
                continue
            self._known.add(rel)
            if file_instance(rel, self.parallelism) == self.instance:
                self.files.append(file)
                found = True
        return found

    def _file_at(self, rel: str) -> str:
        return self.path if os.path.isfile(self.path) else os.path.join(self.path, rel)
