"""The PTY lifecycle, written once for the local backend and the daemon.

Start a program on a new terminal (checked before the fork, so the child has nothing left to
fail on), feed what it writes to a ``TerminalScreen`` and send back the screen's replies to
its queries, turn its wait status into an exit code, and end it HUP -> TERM -> KILL. The
backends differ only in how they wait: the local one on a thread, the daemon on its loop.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import ptyprocess

from planeai.errors import BackendError
from planeai.terminal.screen import TerminalScreen

READ_SIZE = 65536
# ended in this order; after HUP and TERM a third of the timeout each, after KILL all of it
KILL_SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGKILL)
RESET_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGPIPE,
                 signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCHLD)
# Most columns or rows of a session. The PTY takes 65535, but the emulator pays: 2000x2000
# costs 60 MB and 0.3 s to read, 10000x10000 took 0.8 GB and 9 s (a daemon serves no one then).
SIZE_MAX = 2000


def check_size(cols, rows) -> tuple[int, int]:
    """A terminal size both the PTY and the emulator accept, or a BackendError naming it."""
    try:
        c, r = int(cols), int(rows)
    except (TypeError, ValueError):
        c = r = 0
    if not (1 <= c <= SIZE_MAX and 1 <= r <= SIZE_MAX):
        raise BackendError(f"terminal size {cols!r} columns x {rows!r} rows is not accepted; "
                           f"columns and rows are 1..{SIZE_MAX}")
    return c, r


def spawn_pty(argv: list[str], *, cwd: str, env: dict[str, str], cols: int, rows: int,
              preexec: Callable[[], None] | None = None) -> ptyprocess.PtyProcess:
    """Fork and exec ``argv`` on a new PTY, checked first so that the child has nothing left
    to fail on before exec. Whatever still fails in the child ends it with os._exit: a forked
    copy of this process must never return into its code (a daemon's copy went on serving
    its socket next to the daemon)."""
    cols, rows = check_size(cols, rows)
    if not os.path.isdir(cwd):
        raise BackendError(f"cannot start {argv[0]!r}: directory {cwd} does not exist")

    def child() -> None:  # ptyprocess reports what this raises and _exits the child
        # an agent starts with default signal handling whatever planeai inherited: started
        # from `nohup` or `cmd &`, planeai ignores HUP or INT, and so would the agent (^C
        # would not reach it, a hangup would not end it)
        for sig in RESET_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        os.chdir(cwd)
        if preexec is not None:
            preexec()

    parent = os.getpid()
    try:
        return ptyprocess.PtyProcess.spawn(argv, env=env, dimensions=(rows, cols),
                                           preexec_fn=child)
    except BaseException as e:
        if os.getpid() != parent:
            _child_failed(e)
        if isinstance(e, Exception):  # what the child reported (exec, chdir, preexec)
            raise BackendError(f"cannot start {argv[0]!r}: {e}") from None
        raise


def _child_failed(e: BaseException) -> None:
    """In a forked child that failed before exec: say why on its terminal, end it."""
    try:
        os.write(2, f"planeai: cannot start the session: {type(e).__name__}: {e}\r\n".encode())
    finally:
        os._exit(127)


def exit_code_of(status: int | None, signal_status: int | None) -> int | None:
    """Shell convention: a process killed by signal N exits 128+N."""
    if signal_status:
        return 128 + signal_status
    return status


def status_code(wait_status: int) -> int | None:
    """An exit code from ``os.waitpid``'s status (128+N for signal N), None if still running."""
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    if os.WIFEXITED(wait_status):
        return os.WEXITSTATUS(wait_status)
    return None


def kill_wait(sig: int, timeout: float) -> float:
    """Seconds to give the program after ``sig`` before the next signal (or giving up)."""
    return timeout if sig == signal.SIGKILL else timeout / 3


def signal_session(pid: int, sig: int) -> None:
    """Signal the program's process group (the PTY made it a session and group leader), or
    the program alone when the group is gone; a program already gone is no error."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


@dataclass(eq=False)  # a live session is itself: compared and hashed by identity
class PtySession:
    """One program on a PTY and the screen its output draws."""

    name: str
    proc: ptyprocess.PtyProcess
    screen: TerminalScreen
    started: float                       # time.monotonic() at spawn
    last_output: float = 0.0
    exit_code: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards screen (threads)

    def feed(self, data: bytes) -> bytes:
        """Draw output on the screen; returns the screen's replies to write back to the PTY
        (cursor position, device attributes: an agent may wait for them). Hold ``lock`` when
        other threads read the screen."""
        self.screen.feed(data)
        self.last_output = time.monotonic()
        return self.screen.take_replies()
