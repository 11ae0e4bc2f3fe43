"""The daemon's PTY sessions: the programs it runs, on the server's one selector.

The lifecycle itself (spawn, screen and its replies, HUP -> TERM -> KILL, exit codes) is the
shared one in ``backends/pty.py``; what is the daemon's own is that nothing here blocks:

- output is read when the selector says so, drawn on the session's ``TerminalScreen`` (screen
  plus bounded scrollback) and handed to each subscriber through ``send``;
- input for a program that does not read is queued (bounded) and written when the PTY takes it;
- a kill escalates on timers that the server's loop runs (``kill_timers``, ``next_deadline``),
  and its waiters are answered once the child is reaped (``reap``, after SIGCHLD).

Subscribers are the server's clients; this module only hands them frames through ``send``.
"""

from __future__ import annotations

import base64
import errno
import logging
import os
import selectors
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from planeai.backends.base import check_name
from planeai.backends.daemon import protocol as P
from planeai.backends.pty import (KILL_SIGNALS, READ_SIZE, SIZE_MAX, PtySession, check_size,
                                  kill_wait, signal_session, spawn_pty, status_code)
from planeai.terminal.screen import TerminalScreen

log = logging.getLogger("planeai.backends.daemon")

INPUT_BUFFER = 4 * 1024 * 1024      # queued input per session before writes are refused
SCROLLBACK = 10000

# send(subscriber, frame): queue a wire frame to one of the server's clients
Send = Callable[[Any, bytes], None]
KillWaiter = Callable[[int | None], None]   # called with the exit code, None if it survived


class RequestError(Exception):
    """A request that fails without harming the connection (unknown session, bad args)."""


@dataclass(eq=False)
class DSession(PtySession):
    started_wall: float = 0.0
    argv: list = field(default_factory=list)
    fd: int = -1
    pid: int = 0
    alive: bool = True
    inbuf: bytearray = field(default_factory=bytearray)
    subscribers: set = field(default_factory=set)
    kill_waiters: list = field(default_factory=list)   # KillWaiter callbacks
    kill_stage: int = -1
    kill_deadline: float = 0.0
    kill_timeout: float = 5.0
    fd_open: bool = True

    def info(self) -> dict:
        """The session as the wire's ``info`` and ``list`` answers carry it."""
        return {"name": self.name, "alive": self.alive, "exit_code": self.exit_code,
                "pid": self.pid}

    def snapshot(self) -> dict:
        """The screen as the wire's ``snapshot`` answer carries it (ANSI in base64)."""
        scr = self.screen
        now = time.monotonic()
        return {
            "lines": scr.text_lines(),
            "ansi": base64.b64encode(scr.ansi_snapshot()).decode("ascii"),
            "cursor": list(scr.cursor), "cols": scr.cols, "rows": scr.rows,
            "alive": self.alive, "exit_code": self.exit_code,
            "seconds_since_output": now - self.last_output if self.last_output else None,
            "seconds_since_start": now - self.started,
            "title": scr.title,
        }

    def scrollback_lines(self) -> list[str]:
        """Scrollback then screen, without the blank lines at the end."""
        lines = self.screen.scrollback() + self.screen.text_lines()
        while lines and not lines[-1].strip():
            lines.pop()
        return lines


def _default_signals() -> None:
    """In the forked child before exec: ignored signals survive exec, so the agent must not
    inherit the daemon's (it ignores SIGHUP and SIGPIPE; Python ignores SIGPIPE)."""
    for sig in (signal.SIGHUP, signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD,
                signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


class Sessions:
    """The daemon's sessions by name. Registers each PTY on ``sel`` with the data
    ``("pty", session)``; the server's loop calls ``on_readable``/``on_writable`` for those."""

    def __init__(self, sel: selectors.BaseSelector, send: Send, *,
                 scrollback: int = SCROLLBACK) -> None:
        self.sel = sel
        self.send = send
        self.scrollback = scrollback
        self.by_name: dict[str, DSession] = {}

    # ------------------------------------------------------------------ lookups
    def get(self, name) -> DSession:
        """The session called ``name``; raises RequestError when there is none."""
        s = self.by_name.get(name) if isinstance(name, str) else None
        if s is None:
            raise RequestError(f"no daemon session {name!r}")
        return s

    def find(self, name) -> DSession | None:
        """The session called ``name``, or None (TypeError for an unhashable name)."""
        return self.by_name.get(name)

    def values(self) -> list[DSession]:
        """Every session, running or ended and not yet forgotten."""
        return list(self.by_name.values())

    def any_alive(self) -> bool:
        """True while some session's program still runs."""
        return any(s.alive for s in self.by_name.values())

    def next_deadline(self) -> float | None:
        """The monotonic time of the next kill step, None when no kill is under way."""
        deadlines = [s.kill_deadline for s in self.by_name.values() if s.kill_stage >= 0]
        return min(deadlines) if deadlines else None

    # ------------------------------------------------------------------ start, size
    def spawn(self, name: str, argv: list[str], *, cwd: str, env: dict[str, str], cols,
              rows) -> DSession:
        """Start ``argv`` on a new PTY as session ``name`` (an ended one of that name is
        replaced). Returns the session; raises RequestError when one of that name runs or
        argv is empty, BackendError (PlaneaiError) for a bad name, size or directory or a
        program that cannot start."""
        name = check_name(name)
        cols, rows = check_size(cols, rows)
        old = self.by_name.get(name)
        if old is not None:
            if old.alive:
                raise RequestError(f"session {name} is already running")
            self.remove(old)
        if not argv:
            raise RequestError("empty argv")
        # checked before the fork; a failure in the child before exec ends the child
        proc = spawn_pty(argv, cwd=cwd, env=env, cols=cols, rows=rows,
                         preexec=_default_signals)
        s = DSession(name, proc, TerminalScreen(cols, rows, scrollback=self.scrollback),
                     time.monotonic(), started_wall=time.time(), argv=argv, fd=proc.fd,
                     pid=proc.pid)
        os.set_blocking(s.fd, False)
        self.by_name[name] = s
        self.sel.register(s.fd, selectors.EVENT_READ, ("pty", s))
        log.info("spawned %s pid %d: %s", name, s.pid, argv[0])
        return s

    @staticmethod
    def resize(s: DSession, cols: int, rows: int) -> None:
        """Resize the screen and the PTY, each clamped to 1..SIZE_MAX. Returns nothing."""
        cols = max(1, min(int(cols), SIZE_MAX))
        rows = max(1, min(int(rows), SIZE_MAX))
        s.screen.resize(cols, rows)
        if s.fd_open:
            try:
                s.proc.setwinsize(rows, cols)
            except OSError:
                pass

    # ------------------------------------------------------------------ output and input
    def on_readable(self, s: DSession) -> None:
        """Read what the program wrote; at end of file close the PTY and reap."""
        try:
            data = os.read(s.fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            if e.errno not in (errno.EIO, errno.EBADF):
                log.warning("read %s: %s", s.name, e)
            data = b""
        if not data:
            self._close_pty(s)
            self.reap()
            return
        self._output(s, data)

    def _output(self, s: DSession, data: bytes) -> None:
        replies = s.feed(data)  # one thread: the lock is not needed
        if replies and s.fd_open:
            self.queue_input(s, replies, check=False)
        if s.subscribers:
            frames = P.split_data(P.OUTPUT, s.name, data)
            for c in list(s.subscribers):
                for f in frames:
                    self.send(c, f)

    def queue_input(self, s: DSession, data: bytes, check: bool = True) -> None:
        """Write ``data`` to the program, queueing what the PTY does not take now. Raises
        RequestError when it has exited or (``check``) its queue is full."""
        if not data:
            return
        if not s.alive or not s.fd_open:
            raise RequestError(f"session {s.name} has exited")
        if check and len(s.inbuf) + len(data) > INPUT_BUFFER:
            raise RequestError(f"session {s.name} is not reading its input "
                               f"({len(s.inbuf)} bytes waiting)")
        was_empty = not s.inbuf
        s.inbuf += data
        if was_empty:
            self.on_writable(s)

    def on_writable(self, s: DSession) -> None:
        """Write queued input; watch for writability only while some is left."""
        while s.inbuf and s.fd_open:
            try:
                n = os.write(s.fd, s.inbuf[:65536])
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                s.inbuf.clear()
                break
            del s.inbuf[:n]
        if s.fd_open:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if s.inbuf else 0)
            try:
                self.sel.modify(s.fd, events, ("pty", s))
            except (KeyError, ValueError):
                pass

    def _close_pty(self, s: DSession) -> None:
        if not s.fd_open:
            return
        # take what the agent wrote before it went away
        for _ in range(256):
            try:
                data = os.read(s.fd, READ_SIZE)
            except OSError:
                break
            if not data:
                break
            self._output(s, data)
        try:
            self.sel.unregister(s.fd)
        except (KeyError, ValueError):
            pass
        s.fd_open = False
        s.inbuf.clear()
        try:
            s.proc.fileobj.close()
        except OSError:
            pass
        s.proc.closed = True   # ptyprocess must not close, wait or signal it again

    # ------------------------------------------------------------------ ending
    def reap(self) -> None:
        """Collect every ended child: record its exit code, tell its subscribers (an ``exit``
        event) and answer its kill waiters."""
        for s in list(self.by_name.values()):
            if not s.alive:
                continue
            try:
                pid, status = os.waitpid(s.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = s.pid, 0
            if pid == 0:
                continue
            code = status_code(status)
            if code is None:
                continue
            self._close_pty(s)
            s.proc.terminated = True
            s.alive = False
            s.exit_code = code
            s.kill_stage = -1
            log.info("session %s pid %d exited with %s", s.name, s.pid, code)
            for c in list(s.subscribers):
                self.send(c, P.encode_control({"event": "exit", "name": s.name, "code": code}))
            waiters, s.kill_waiters = s.kill_waiters, []
            for w in waiters:
                try:
                    w(code)
                except Exception:
                    log.exception("kill waiter")

    def start_kill(self, s: DSession, timeout: float, waiter: KillWaiter) -> None:
        """Begin HUP -> TERM -> KILL (unless already under way); ``waiter`` gets the exit
        code once the child is reaped, or None if it survived SIGKILL."""
        s.kill_waiters.append(waiter)
        if s.kill_stage >= 0:
            return  # already on its way down
        s.kill_timeout = max(0.1, timeout)
        s.kill_stage = 0
        signal_session(s.pid, KILL_SIGNALS[0])
        s.kill_deadline = time.monotonic() + kill_wait(KILL_SIGNALS[0], s.kill_timeout)

    def kill_timers(self) -> None:
        """Send the next signal to every kill whose step is due."""
        now = time.monotonic()
        for s in list(self.by_name.values()):
            if s.kill_stage < 0 or not s.alive or now < s.kill_deadline:
                continue
            s.kill_stage += 1
            if s.kill_stage >= len(KILL_SIGNALS):
                log.warning("session %s pid %d survived SIGKILL", s.name, s.pid)
                s.kill_stage = -1
                waiters, s.kill_waiters = s.kill_waiters, []
                for w in waiters:
                    w(None)
                continue
            sig = KILL_SIGNALS[s.kill_stage]
            signal_session(s.pid, sig)
            s.kill_deadline = now + kill_wait(sig, s.kill_timeout)

    def remove(self, s: DSession) -> None:
        """Forget an ended session: close its PTY and screen, unsubscribe its clients."""
        self._close_pty(s)
        for c in list(s.subscribers):
            c.subs.discard(s.name)
        s.subscribers.clear()
        self.by_name.pop(s.name, None)
        s.screen.close()

    def close_all(self) -> None:
        """At shutdown: close every PTY (the programs were stopped before)."""
        for s in list(self.by_name.values()):
            self._close_pty(s)
