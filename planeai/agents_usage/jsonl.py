"""Incremental reading of a JSON-lines file another process is still writing.

Only complete lines are consumed: a last line without its newline is being written and is read
again next time, from the same offset. A line that is not JSON is counted and skipped (a CLI
crash can leave one), never fatal. A file that shrank or was replaced (another inode) is read
again from the start, and the caller is told so it can drop what it had added up from it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Callable, Iterator

# Read in blocks so a huge file never sits in memory whole.
BLOCK = 1 << 20


@dataclass
class Cursor:
    """Where reading a file stopped: its inode and the offset after the last complete line."""

    offset: int = 0
    inode: int = 0

    def as_list(self) -> list[int]:
        return [self.offset, self.inode]

    @classmethod
    def from_list(cls, v) -> "Cursor":
        return cls(int(v[0]), int(v[1])) if v else cls()


@dataclass
class Chunk:
    """What one read found: records (already filtered and decoded), malformed lines skipped,
    and whether the file started over (the caller's sums for it are void)."""

    records: list
    malformed: int
    restarted: bool


def _json_object(line: bytes) -> dict:
    rec = json.loads(line)
    if not isinstance(rec, dict):
        raise ValueError("not a JSON object")
    return rec


def read_new(path: str, cur: Cursor, want: Callable[[bytes], bool] = lambda line: True,
             decode: Callable[[bytes], object] = _json_object) -> Chunk | None:
    """Decode the complete lines of ``path`` after ``cur`` for which ``want(raw line)`` holds,
    advancing ``cur``. ``want`` is a cheap byte test that spares decoding lines the caller
    does not need; ``decode`` (a JSON object by default) raises ValueError for a malformed
    line. None when the file is missing or unchanged (a stat, nothing more)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    restarted = False
    if st.st_ino != cur.inode or st.st_size < cur.offset:
        restarted = cur.inode != 0 or cur.offset != 0
        cur.offset, cur.inode = 0, st.st_ino
    if st.st_size == cur.offset:
        return Chunk([], 0, True) if restarted else None
    records: list = []
    malformed = 0
    try:
        with open(path, "rb") as f:
            f.seek(cur.offset)
            for line in _lines(f):
                cur.offset += len(line)
                if not want(line):
                    continue
                try:
                    records.append(decode(line))
                except ValueError:
                    malformed += 1
    except OSError:
        return None
    return Chunk(records, malformed, restarted)


def _lines(f) -> Iterator[bytes]:
    """Complete lines (with their newline) from the file's position; a partial last line is
    left unread."""
    rest = b""
    while True:
        block = f.read(BLOCK)
        if not block:
            return
        data = rest + block
        end = data.rfind(b"\n")
        if end < 0:
            rest = data
            continue
        rest = data[end + 1:]
        for line in data[:end].split(b"\n"):
            yield line + b"\n"


def first_record(path: str, want: Callable[[dict], bool], *, max_lines: int = 20) -> dict | None:
    """The first of the first ``max_lines`` complete records of ``path`` that ``want``
    accepts: enough to tell whose file it is without reading it all."""
    try:
        with open(path, "rb") as f:
            for i, line in enumerate(f):
                if i >= max_lines or not line.endswith(b"\n"):
                    return None
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and want(rec):
                    return rec
    except OSError:
        return None
    return None
