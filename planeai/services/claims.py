"""An idempotent record of "this session's agent started", written before the agent runs.

A starter (``SessionManager.start``) writes ``claim`` into the session's directory before it
spawns anything, and runs the agent behind a tiny argv-only sh step that renames
``claim -> started`` and execs the agent only if that rename won. A rename of one file
succeeds once, so whoever finds a session that was never recorded as running (its starter
died between spawning and recording, or a command it wrote to tmux ran after it died) renames
``claim -> aborted``: if that wins, the agent can never start and the task can simply go back
to the queue; if ``started`` is there instead, the agent ran and is judged like any run.

While a starter works on a session it holds an flock on ``starting``; the kernel drops it when
the starter dies, so "is the starter still at it?" needs no pid and no timeout.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# What the sh step exits with when it lost the race: the agent never ran.
EXIT_ABORTED = 97

# The directory arrives as $0 and the agent's argv as "$@": nothing is parsed by the shell.
# The session id of the step (the session leader's pid, as procs.session_processes wants it)
# goes to `leader` first, so whoever sees `started` also finds the processes to end.
_STEP = ('IFS=" " read -r _ _ _ _ _ sid _ < /proc/self/stat 2>/dev/null; '
         'printf "%s\\n" "${sid:-$$}" > "$0/leader"; '
         'PATH="$PATH:/bin:/usr/bin" mv "$0/claim" "$0/started" 2>/dev/null '
         f'|| exit {EXIT_ABORTED}; exec "$@"')


class Claim:
    """The claim files of one session directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self._fd: int | None = None

    def _p(self, name: str) -> Path:
        return self.dir / name

    # ------------------------------------------------------------------ the starter
    def prepare(self) -> "Claim":
        """Lock ``starting`` (held until :meth:`release`) and write ``claim``."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._p("starting"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # a fresh directory: nobody else has it
        self._fd = fd
        os.close(os.open(self._p("claim"), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                         0o600))
        return self

    def wrap(self, argv: list[str]) -> list[str]:
        """The agent's argv behind the claim step."""
        return ["/bin/sh", "-c", _STEP, str(self.dir), *argv]

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def discard(self) -> None:
        """Nothing was spawned: forget the directory."""
        self.release()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ anyone
    @contextmanager
    def settling(self) -> Iterator[bool]:
        """Yields False while a starter (this process or another) still holds ``starting``;
        else True, holding it, so the starter is known gone and no second settler runs."""
        try:
            fd = os.open(self._p("starting"), os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            yield True  # written by a planeai from before claims, or its directory is gone
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def abort(self) -> bool:
        """Make sure the agent never starts; True if this call is what stopped it."""
        try:
            os.rename(self._p("claim"), self._p("aborted"))
            return True
        except FileNotFoundError:
            return False

    @property
    def started(self) -> bool:
        return self._p("started").exists()

    def leader(self) -> int | None:
        """The session leader the claim step ran under (written before ``started``)."""
        try:
            return int(self._p("leader").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
