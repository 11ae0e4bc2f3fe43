"""The local backend: PTYs owned by this planeai process.

One reader thread serves every session through a selector (dozens of sessions cost one
thread, not dozens). Output goes into an in-process ``TerminalScreen`` and out to
subscribers. Sessions end when planeai exits: use tmux or the daemon to outlive it.
"""

from __future__ import annotations

import errno
import os
import selectors
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import ptyprocess

from planeai.backends import procs
from planeai.backends.base import (key_bytes, OutputCallback, SessionInfo, Snapshot, SpawnSpec,
                                   bracketed, check_name)
from planeai.backends.pty import (KILL_SIGNALS, READ_SIZE, SIZE_MAX, PtySession, exit_code_of,
                                  kill_wait, signal_session, spawn_pty)
from planeai.errors import BackendError
from planeai.terminal.screen import TerminalScreen


@dataclass
class _Local(PtySession):
    done: threading.Event = field(default_factory=threading.Event)
    subscribers: list[OutputCallback] = field(default_factory=list)


class LocalBackend:
    kind = "local"
    in_process = True
    persistent = False
    has_screen = True
    lost_reason = "the planeai process that ran it has ended"

    @classmethod
    def from_settings(cls, config, locs, env: dict[str, str]) -> LocalBackend:
        return cls()

    def __init__(self, scrollback: int = 5000) -> None:
        self._sessions: dict[str, _Local] = {}
        self._by_fd: dict[int, _Local] = {}
        self._lock = threading.Lock()
        self._scrollback = scrollback
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="planeai-local-pty", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ reader loop
    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _loop(self) -> None:
        while not self._closed:
            try:
                events = self._selector.select(timeout=1.0)
            except (OSError, ValueError):
                if self._closed:
                    return
                continue
            for key, _ in events:
                if key.data is None:
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                    continue
                self._read(key.data)

    def _read(self, s: _Local) -> None:
        fd = s.proc.fd
        try:
            data = os.read(fd, READ_SIZE)
        except OSError as e:
            if e.errno not in (errno.EIO, errno.EBADF):
                raise
            data = b""
        if not data:
            self._finish(s)
            return
        with s.lock:
            replies = s.feed(data)
            subs = list(s.subscribers)
        if replies:
            try:
                os.write(fd, replies)
            except OSError:
                pass
        for cb in subs:
            try:
                cb(s.name, data)
            except Exception:  # a broken subscriber must not kill the reader
                pass

    def _finish(self, s: _Local) -> None:
        try:
            self._selector.unregister(s.proc.fd)
        except (KeyError, ValueError, OSError):
            pass
        self._by_fd.pop(s.proc.fd, None)
        # the child has closed the PTY; reap it for its exit status
        try:
            s.proc.wait()
        except ptyprocess.PtyProcessError:
            pass
        except OSError:
            pass
        s.exit_code = exit_code_of(s.proc.exitstatus, s.proc.signalstatus)
        s.done.set()
        for cb in list(s.subscribers):
            try:
                cb(s.name, b"")
            except Exception:
                pass

    # ------------------------------------------------------------------ protocol
    def _get(self, name: str) -> _Local:
        s = self._sessions.get(name)
        if s is None:
            raise BackendError(f"no local session {name!r}")
        return s

    def spawn(self, spec: SpawnSpec) -> SessionInfo:
        check_name(spec.name)
        with self._lock:
            old = self._sessions.get(spec.name)
            if old is not None and not old.done.is_set():
                raise BackendError(f"session {spec.name} is already running")
        proc = spawn_pty(spec.argv, cwd=spec.cwd, env=spec.env, cols=spec.cols, rows=spec.rows)
        screen = TerminalScreen(spec.cols, spec.rows, scrollback=self._scrollback)
        s = _Local(spec.name, proc, screen, time.monotonic())
        with self._lock:
            self._sessions[spec.name] = s
            self._by_fd[proc.fd] = s
        self._selector.register(proc.fd, selectors.EVENT_READ, s)
        self._wake()
        return SessionInfo(spec.name, True, None, proc.pid)

    def info(self, name: str) -> SessionInfo | None:
        s = self._sessions.get(name)
        if s is None:
            return None
        return SessionInfo(name, not s.done.is_set(), s.exit_code, s.proc.pid)

    def list(self) -> list[SessionInfo]:
        return [self.info(n) for n in list(self._sessions)]  # type: ignore[misc]

    def survey(self) -> dict[str, SessionInfo]:
        # always definite: this process holds every session it knows
        return {i.name: i for i in self.list()}

    def write(self, name: str, data: bytes) -> None:
        s = self._get(name)
        if s.done.is_set():
            raise BackendError(f"session {name} has exited")
        view = memoryview(data)
        while view:
            try:
                n = os.write(s.proc.fd, view)
            except BlockingIOError:
                time.sleep(0.005)
                continue
            except OSError as e:
                raise BackendError(f"cannot write to session {name}: {e.strerror}") from None
            view = view[n:]

    def send_keys(self, name: str, *keys: str) -> None:
        self.write(name, key_bytes(keys))

    def paste(self, name: str, text: str) -> None:
        s = self._get(name)
        with s.lock:
            enabled = s.screen.bracketed_paste
        self.write(name, bracketed(text, enabled))

    def resize(self, name: str, cols: int, rows: int) -> None:
        s = self._get(name)
        cols, rows = max(1, min(int(cols), SIZE_MAX)), max(1, min(int(rows), SIZE_MAX))
        with s.lock:
            s.screen.resize(cols, rows)
        if not s.done.is_set():
            try:
                s.proc.setwinsize(rows, cols)
            except OSError:
                pass

    def snapshot(self, name: str) -> Snapshot:
        s = self._get(name)
        with s.lock:
            lines = s.screen.text_lines()
            ansi = s.screen.ansi_snapshot()
            cursor = s.screen.cursor
            cols, rows = s.screen.cols, s.screen.rows
            last = s.last_output
        since = time.monotonic() - last if last else None
        return Snapshot(lines, ansi, cursor, cols, rows, not s.done.is_set(), s.exit_code,
                        since, {"seconds_since_start": time.monotonic() - s.started})

    def screen(self, name: str) -> tuple[TerminalScreen, threading.Lock]:
        """The live emulator (for the app's renderer); hold the lock while reading it."""
        s = self._get(name)
        return s.screen, s.lock

    def scrollback(self, name: str) -> list[str]:
        s = self._get(name)
        with s.lock:
            return s.screen.scrollback() + s.screen.text_lines()

    def wait(self, name: str, timeout: float | None = None) -> int | None:
        s = self._get(name)
        s.done.wait(timeout)
        return s.exit_code

    def kill(self, name: str, *, timeout: float = 5.0) -> int | None:
        s = self._get(name)
        if s.done.is_set():
            return s.exit_code
        for sig in KILL_SIGNALS:
            signal_session(s.proc.pid, sig)
            if s.done.wait(kill_wait(sig, timeout)):
                break
        # what the agent started in groups of their own (a shell's jobs) is still in its
        # session: a stop leaves nothing of it running
        procs.kill_session_processes(s.proc.pid, timeout=timeout)
        return s.exit_code

    def forget(self, name: str) -> None:
        s = self._sessions.get(name)
        if s is None:
            return
        if not s.done.is_set():
            self.kill(name)
        with self._lock:
            self._sessions.pop(name, None)
        try:
            s.proc.close(force=True)
        except Exception:
            pass

    def attach_command(self, name: str) -> list[str] | None:
        return None  # lives inside this process: the app shows it, nothing else can attach

    def subscribe(self, name: str, callback: OutputCallback) -> Callable[[], None]:
        s = self._get(name)
        with s.lock:
            s.subscribers.append(callback)

        def unsubscribe() -> None:
            with s.lock:
                if callback in s.subscribers:
                    s.subscribers.remove(callback)

        return unsubscribe

    def close(self) -> None:
        for name in list(self._sessions):
            self.forget(name)
        self._closed = True
        self._wake()
        self._thread.join(timeout=2)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._selector.close()
