"""The control client: :class:`TmuxControl`, a thread-safe handle on one tmux server that keeps
a main control connection (attached to a hidden session) plus one watcher connection per
session whose output is streamed. The facts it relies on are in the package doc."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import subprocess
import threading
import time
import weakref
from typing import Callable

from planeai.backends.tmux_control.connection import Connection, PendingCommand
from planeai.backends.tmux_control.errors import (TmuxCommandError, TmuxControlClosed,
                                                  TmuxTimeout)
from planeai.backends.tmux_control.protocol import pane_target
from planeai.backends.tmux_control.server import ServerLock, server_env

log = logging.getLogger(__name__)

CONTROL_SESSION = "__planeai_ctl"

# Commands that cannot make tmux send a notification: they run without the server lock.
_QUIET = frozenset({"capture-pane", "list-panes", "list-sessions", "list-windows",
                    "list-clients", "has-session", "display-message", "show-options",
                    "show-environment", "show-buffer", "send-keys", "refresh-client"})


# Control clients still open at interpreter exit: leaving without the lock (the pipe closing
# as the process ends) is exactly the unordered detach that crashes tmux 3.3a.
_OPEN: "weakref.WeakSet[TmuxControl]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for ctl in list(_OPEN):
        if ctl._pid != os.getpid():
            continue  # a forked child's copy: the parent still uses that client
        try:
            ctl.close()
        except Exception:  # exiting anyway
            pass


class TmuxControl:
    """A persistent control-mode client of the tmux server ``tmux -L socket_name``.

    Thread-safe: any thread may call :meth:`command` and friends concurrently. Listeners run on
    the reader thread: keep them quick and do not call :meth:`command` from them (use
    :meth:`send_nowait`).
    """

    def __init__(
        self,
        socket_name: str,
        *,
        tmux_bin: str = "tmux",
        env: dict[str, str] | None = None,
        config_file: str | None = None,
        pause_after: int | None = 5,
        start_timeout: float = 10.0,
        wrap: Callable[[list[str]], list[str]] | None = None,
        lock_name: str | None = None,
    ) -> None:
        self.socket_name = socket_name
        # ``wrap``: the server is on another machine; it turns a tmux argv into the local argv
        # that runs it there (ssh, planeai.backends.remote), so tmux is looked up there
        self.wrap = wrap
        self.tmux_bin = tmux_bin if wrap is not None else (shutil.which(tmux_bin) or tmux_bin)
        # no TMUX/TMUX_PANE either: a client inside a pane would talk to that pane's server.
        # ssh needs the user's own environment (its agent socket); the remote tmux never
        # sees it
        full = dict(os.environ if env is None else env)
        self.env = full if wrap is not None else server_env(full)
        self.lock = ServerLock.of(lock_name or socket_name, self.env)
        self._pid = os.getpid()
        self.config_file = config_file
        self.pause_after = pause_after
        self.start_timeout = start_timeout
        self._output_listeners: list[Callable[[str, bytes], None]] = []
        self._event_listeners: list[Callable[[str, list[str]], None]] = []
        self._main: Connection | None = None
        self._watchers: dict[str, Connection] = {}
        self._lock = threading.Lock()
        self._output_enabled = True
        self._closing = False

    # -- lifecycle -----------------------------------------------------------------------------

    def _client_flags(self) -> str:
        flags = ["ignore-size"]
        if not self._output_enabled:
            flags.append("no-output")
        if self.pause_after is not None:
            flags.append(f"pause-after={int(self.pause_after)}")
        return ",".join(flags)

    def start(self) -> None:
        """Start the control client; starts the server too if it is not running."""
        with self.lock, self._lock:
            if self._main is not None and self._main.alive:
                return
            self._closing = False
            conn = Connection(
                self,
                [
                    "new-session", "-A", "-s", CONTROL_SESSION, "-x", "80", "-y", "24",
                    "-c", "/", "sleep 2147483647",  # silent; valid in any default-shell
                ],
                "main",
                forward_notifications=True,
            )
            try:
                conn.wait_attached(self.start_timeout)
                # Client flags first, then the session options; wait for all answers.
                pend = conn.submit_many(
                    [
                        ["refresh-client", "-f", self._client_flags()],
                        ["set-option", "-t", "=" + CONTROL_SESSION + ":", "status", "off"],
                        ["set-option", "-w", "-t", "=" + CONTROL_SESSION + ":",
                         "remain-on-exit", "on"],
                        ["set-option", "-g", "-w", "automatic-rename", "off"],
                        ["set-option", "-g", "-w", "allow-rename", "off"],
                    ]
                )
                for p in pend:
                    conn.wait(p, self.start_timeout)
            except BaseException:
                conn.close()
                raise
            self._main = conn
            _OPEN.add(self)

    def close(self) -> None:
        """Detach every control client of ours. The server and other sessions stay."""
        with self._lock:
            self._closing = True
            conns = list(self._watchers.values())
            self._watchers.clear()
            if self._main is not None:
                conns.append(self._main)
        for c in conns:
            c.close()

    def __enter__(self) -> "TmuxControl":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        m = self._main
        return m is not None and m.alive

    # -- commands ------------------------------------------------------------------------------

    def _conn(self) -> Connection:
        m = self._main
        if m is None:
            raise TmuxControlClosed("tmux control client not started")
        return m

    def command(self, *args: str, timeout: float = 10.0) -> list[str]:
        """Run one tmux command (argv list); return its output lines."""
        c = self._conn()
        if args and args[0] in _QUIET:
            (p,) = c.submit_many([list(args)])
            return c.wait(p, timeout)
        with self.lock:
            (p,) = c.submit_many([list(args)])
            return c.wait(p, timeout)

    def _wait_client_gone(self, pid: int, timeout: float) -> None:
        """Until the server has dropped client ``pid`` (and so sent its notifications)."""
        if self.wrap is not None:
            return  # a remote client: its ssh ended with it, and its pid is not ours to list
        deadline = time.monotonic() + timeout
        argv = [self.tmux_bin, "-L", self.socket_name, "list-clients", "-F", "#{client_pid}"]
        while time.monotonic() < deadline:
            try:
                r = subprocess.run(argv, capture_output=True, text=True, env=self.env,
                                   cwd="/", timeout=max(0.1, deadline - time.monotonic()))
            except (OSError, subprocess.SubprocessError):
                return
            if r.returncode != 0 or str(pid) not in r.stdout.split():
                return  # gone, or no server any more
            time.sleep(0.005)

    def commands(
        self, cmds: list[list[str]], timeout: float = 10.0
    ) -> list[list[str] | TmuxCommandError]:
        """Pipelined: send all commands, then collect answers in order.

        A command that tmux rejects gives a TmuxCommandError in its slot; a dead client raises
        TmuxControlClosed, a missing answer TmuxTimeout.
        """
        if not cmds:
            return []
        if any(x[0] not in _QUIET for x in cmds):
            with self.lock:
                return self._commands(cmds, timeout)
        return self._commands(cmds, timeout)

    def _commands(
        self, cmds: list[list[str]], timeout: float
    ) -> list[list[str] | TmuxCommandError]:
        c = self._conn()
        pend = c.submit_many([list(x) for x in cmds])
        out: list[list[str] | TmuxCommandError] = []
        deadline = time.monotonic() + timeout
        for p in pend:
            try:
                out.append(c.wait(p, max(0.0, deadline - time.monotonic())))
            except TmuxCommandError as e:
                out.append(e)
            except TmuxTimeout:
                for q in pend:
                    q.abandoned = True
                raise
        return out

    def send_nowait(self, *args: str) -> None:
        """Send a command without waiting for its answer (safe from listeners)."""
        self._conn().submit_many([list(args)])

    # -- capture -------------------------------------------------------------------------------

    @staticmethod
    def _capture_argv(
        target: str, escapes: bool, start: int | None, end: int | None
    ) -> list[str]:
        argv = ["capture-pane", "-p"]
        if escapes:
            argv.append("-e")
        if start is not None:
            argv += ["-S", str(start)]
        if end is not None:
            argv += ["-E", str(end)]
        argv += ["-t", pane_target(target)]
        return argv

    @staticmethod
    def _join(lines: list[str]) -> str:
        # Same text as the stdout of a forked `tmux capture-pane -p`: every line ends in "\n".
        return "".join(x + "\n" for x in lines)

    def capture_pane(
        self,
        target: str,
        *,
        escapes: bool = True,
        start: int | None = None,
        end: int | None = None,
        timeout: float = 10.0,
    ) -> str:
        return self._join(
            self.command(*self._capture_argv(target, escapes, start, end), timeout=timeout)
        )

    def capture_panes(
        self, targets: list[str], *, escapes: bool = True, timeout: float = 10.0
    ) -> dict[str, str | None]:
        """Capture many panes in one pipelined sweep; None for a target tmux rejected."""
        res = self.commands(
            [self._capture_argv(t, escapes, None, None) for t in targets], timeout=timeout
        )
        return {
            t: (None if isinstance(r, TmuxCommandError) else self._join(r))
            for t, r in zip(targets, res)
        }

    # -- helpers -------------------------------------------------------------------------------

    _LS_FIELDS = (
        "name", "session_id", "pane_id", "pane_pid", "pane_dead", "pane_dead_status",
        "attached", "created", "window_width", "window_height",
    )
    _LS_FORMAT = "\x1f".join(
        "#{%s}" % f
        for f in (
            "session_name", "session_id", "pane_id", "pane_pid", "pane_dead",
            "pane_dead_status", "session_attached", "session_created", "window_width",
            "window_height",
        )
    )

    def list_sessions(self) -> list[dict]:
        """Sessions (without the hidden control session) with their active pane's state.

        Keys: name, session_id ("$1"), pane_id ("%3"), pane_pid (int|None), pane_dead (bool),
        pane_dead_status (int|None), attached (int, includes our watchers), created (int),
        window_width, window_height (int).
        """
        try:
            lines = self.command("list-sessions", "-F", self._LS_FORMAT)
        except TmuxCommandError:  # "no server" cannot happen while we are attached
            return []

        def num(s: str) -> int | None:
            try:
                return int(s)
            except ValueError:
                return None

        out = []
        for line in lines:
            parts = line.split("\x1f")
            if len(parts) != len(self._LS_FIELDS):
                continue
            d = dict(zip(self._LS_FIELDS, parts))
            if d["name"] == CONTROL_SESSION:
                continue
            d["pane_pid"] = num(d["pane_pid"])
            d["pane_dead"] = d["pane_dead"] == "1"
            d["pane_dead_status"] = num(d["pane_dead_status"]) if d["pane_dead"] else None
            for k in ("attached", "created", "window_width", "window_height"):
                d[k] = num(d[k]) or 0
            out.append(d)
        return out

    def has_session(self, name: str) -> bool:
        try:
            self.command("has-session", "-t", "=" + name)
            return True
        except TmuxCommandError:
            return False

    # -- output --------------------------------------------------------------------------------

    def add_output_listener(self, cb: Callable[[str, bytes], None]) -> None:
        """cb(pane_id, raw_bytes) for every %output of a watched session (reader thread)."""
        self._output_listeners = [*self._output_listeners, cb]

    def remove_output_listener(self, cb: Callable[[str, bytes], None]) -> None:
        self._output_listeners = [x for x in self._output_listeners if x is not cb]

    def add_event_listener(self, cb: Callable[[str, list[str]], None]) -> None:
        """cb(name, args) for notifications, e.g. ("sessions-changed", []),
        ("window-close", ["@3"]), ("pause", ["%3", "<session>"]), ("exit", [reason]),
        ("watch-ended", [session])."""
        self._event_listeners = [*self._event_listeners, cb]

    def remove_event_listener(self, cb: Callable[[str, list[str]], None]) -> None:
        self._event_listeners = [x for x in self._event_listeners if x is not cb]

    def set_output(self, enabled: bool) -> None:
        """Turn %output delivery on or off for all our control clients (``no-output`` flag)."""
        self._output_enabled = enabled
        flag = "!no-output" if enabled else "no-output"
        with self._lock:
            conns = [c for c in [self._main, *self._watchers.values()] if c is not None]
        for c in conns:
            if c.alive:
                try:
                    c.wait(c.submit_many([["refresh-client", "-f", flag]])[0], 10.0)
                except TmuxControlClosed:
                    pass

    def watch(self, session: str, *, timeout: float = 10.0) -> None:
        """Receive %output for the panes of ``session`` (exact name).

        tmux only sends pane output to control clients attached to the pane's session, so this
        attaches one more control client (``ignore-size``; it never changes the session's size).
        """
        self._conn()
        with self.lock:
            with self._lock:
                old = self._watchers.get(session)
                if old is not None and old.alive:
                    return
                conn = Connection(
                    self,
                    ["attach-session", "-f", self._client_flags(), "-t", "=" + session],
                    session,
                    forward_notifications=False,
                )
                self._watchers[session] = conn
            try:
                conn.wait_attached(timeout)
            except BaseException:
                with self._lock:
                    if self._watchers.get(session) is conn:
                        del self._watchers[session]
                conn.close()
                raise

    def watcher_commands(self, session: str, cmds: list[list[str]],
                         on_done: Callable[[list], None]) -> None:
        """Send quiet commands (captures, ``list-panes``) over ``session``'s watcher: their
        answers take their place in that session's output stream, so ``on_done(results)``
        (each an output list or a TmuxCommandError) runs on the reader thread after exactly
        the output tmux produced before them and before any it produced after. Never
        called when the watcher dies first. Raises TmuxControlClosed when not watched."""
        with self._lock:
            conn = self._watchers.get(session)
        if conn is None or not conn.alive:
            raise TmuxControlClosed(f"tmux session {session} is not watched")
        answers: list = []

        def done(p: PendingCommand) -> None:  # in order: the blocks come in order
            answers.append(TmuxCommandError(p.error, p.argv) if p.error is not None
                           else p.lines)
            if len(answers) == len(cmds):
                on_done(answers)

        conn.submit_many([list(c) for c in cmds], on_done=done)

    def unwatch(self, session: str) -> None:
        with self._lock:
            conn = self._watchers.pop(session, None)
        if conn is not None:
            conn.close()

    @property
    def watched(self) -> set[str]:
        with self._lock:
            return {k for k, c in self._watchers.items() if c.alive}

    # -- internal callbacks (reader threads) ---------------------------------------------------

    def _emit_output(self, pane: str, data: bytes) -> None:
        for cb in self._output_listeners:
            try:
                cb(pane, data)
            except Exception:  # a listener bug must not kill the reader
                log.exception("tmux output listener failed")

    def _emit_event(self, name: str, args: list[str]) -> None:
        for cb in self._event_listeners:
            try:
                cb(name, args)
            except Exception:
                log.exception("tmux event listener failed")

    def _on_pause(self, conn: Connection, pane: str) -> None:
        # tmux dropped the backlog of a pane we fell behind on; resume at once. Listeners got a
        # ("pause", [pane, ...]) event and should resync the pane with capture_pane.
        # tmux answers with a "%continue %N" line inside the command's own %begin block.
        def done(p: PendingCommand) -> None:
            if p.error is None:
                extra = [] if conn is self._main else [conn.label]
                self._emit_event("continue", [pane, *extra])

        try:
            conn.submit_many([["refresh-client", "-A", f"{pane}:continue"]], on_done=done)
        except TmuxControlClosed:
            pass

    def _conn_died(self, conn: Connection) -> None:
        if conn is self._main:
            self._emit_event("exit", [conn._exit_reason] if conn._exit_reason else [])
            return
        with self._lock:
            if self._watchers.get(conn.label) is conn:
                del self._watchers[conn.label]
        if not self._closing:
            self._emit_event("watch-ended", [conn.label])
