"""A persistent tmux control-mode client (``tmux -C``).

One ``tmux -C`` process is kept open on a dedicated server (``tmux -L <socket>``) and every
command is written to its stdin as one line; tmux answers each command with a
``%begin TIME NUM FLAGS`` ... ``%end``/``%error TIME NUM FLAGS`` block, in the order the commands
were sent. Notifications (``%output``, ``%sessions-changed``, ``%exit`` ...) arrive between blocks.
A capture over this channel costs ~0.3 ms instead of ~2.2 ms for a fork of ``tmux``.

Facts this module relies on (checked on tmux 3.3a):

* A control client must be attached to a session or it exits. The main client attaches to a
  hidden session ``__planeai_ctl`` that stays for the server's life (``new-session -A``: the
  server runs commands one at a time, so six clients starting at once make one session).
* tmux 3.3a segfaults (the server, so every session, dies) when it sends a control-mode
  notification (``%client-detached``, ``%sessions-changed``, ``%layout-change``...) to a
  control client that is still identifying itself (its control state is not set up yet:
  tmux PRs #4980, #5004). Six planeai commands at once did it within seconds, with or without
  ``destroy-unattached``. So planeai's processes take one lock per server (:class:`ServerLock`,
  an flock next to the socket) while a control client connects, while one leaves (until the
  server has dropped it), and around every command that can notify; and windows do not
  rename themselves (``automatic-rename off``: a rename is a notification too). What planeai
  cannot order is a person attaching to or detaching from the server at that very moment.
* The server is started by our control client, and a fresh server keeps its starter's
  environment as the global one (``show-environment -g``), inherited by every pane: the client
  runs with :func:`server_env` (no provider keys) and in ``/`` (a start directory is expanded
  as a format, and the server keeps its starter's cwd).
* A control client only receives ``%output`` for panes of windows in *its attached session*.
  The hidden session has one silent pane, so the main client receives no pane output at all.
  To stream a session's output call :meth:`TmuxControl.watch`, which attaches one extra control
  client to that session (flags ``ignore-size``) and feeds the same output listeners.
* Size: a control client that never sent ``refresh-client -C WxH`` is ignored when tmux sizes
  windows, and a client only takes part in sizing windows of the session it is attached to.
  Both clients also set the ``ignore-size`` client flag. So neither the hidden session nor a
  watcher changes the size of any agent session.
* Quoting: each argument is sent single-quoted; a ``'`` is sent as ``"'"`` and control
  characters (newline, tab, ESC ...) as double-quoted octal escapes ``"\\012"``; adjacent quoted
  pieces concatenate into one word, as in sh. Inside single quotes tmux expands nothing
  (``$``, ``~``, ``#``, ``;``, ``{}``, ``\\`` are literal). NUL cannot be sent. Note that some
  commands (``display-message``, ``-F`` formats, ``new-session`` commands) still expand
  ``#{...}`` formats *in their own semantics*; that is not the parser's doing.
* ``if-shell``/``source-file`` produce more than one block; :meth:`TmuxControl.command` handles
  them with a trailing marker command. ``new-session`` without ``-d`` run through the control
  client would *switch the control client* into the new session: always pass ``-d``.
* Target a session exactly with ``=NAME``; a *pane* or *window* target needs ``=NAME:``
  (``capture-pane -t =A`` fails with "can't find pane: =A"). :meth:`capture_pane` adds the
  colon for you.
"""

from __future__ import annotations

import atexit
import collections
import fcntl
import logging
import os
import re
import shutil
import subprocess
import threading
import time
import weakref
from pathlib import Path
from typing import Callable, Iterable

from planeai.errors import BackendError

log = logging.getLogger(__name__)

CONTROL_SESSION = "__planeai_ctl"

# Commands whose execution inserts further commands (each with its own %begin block).
_MULTI_BLOCK = frozenset({"if-shell", "if", "source-file", "source"})
_MARKER = "__planeai_sync__"

# Notifications whose last argument is a free-form name that may contain spaces:
# name -> number of space splits before the rest is taken as one argument.
_NAME_SPLITS = {
    "session-changed": 1,
    "client-session-changed": 2,
    "session-renamed": 0,
    "window-renamed": 1,
    "unlinked-window-renamed": 1,
    "exit": 0,
    "message": 0,
    "config-error": 0,
    "subscription-changed": -1,  # keep raw split, value after " : " handled below
}

_SAFE = re.compile(r"[A-Za-z0-9_@%+=,./:-]+")
_OCTAL = re.compile(rb"\\([0-7]{3})")

# What a tmux server (and so every pane, before its own -e variables) may inherit from the
# process that starts it. Anything else, API keys above all, stays out of the server.
SERVER_ENV_KEYS = frozenset({"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TERM",
                             "TMUX_TMPDIR", "TZ"})


def server_env(env: dict[str, str]) -> dict[str, str]:
    """The environment a tmux client runs with: only what a server needs (locale, paths)."""
    return {k: v for k, v in env.items() if k in SERVER_ENV_KEYS or k.startswith("LC_")}


# Commands that cannot make tmux send a notification: they run without the server lock.
_QUIET = frozenset({"capture-pane", "list-panes", "list-sessions", "list-windows",
                    "list-clients", "has-session", "display-message", "show-options",
                    "show-environment", "show-buffer", "send-keys", "refresh-client"})


LOCK_TIMEOUT = 30.0


class ServerLock:
    """One lock per tmux server, shared by every planeai process and thread (reentrant in a
    thread): flock on ``$TMUX_TMPDIR/tmux-UID/<socket>.planeai-lock``. See the module doc."""

    _registry: dict[str, "ServerLock"] = {}
    _registry_lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._rlock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @classmethod
    def of(cls, socket_name: str, env: dict[str, str]) -> "ServerLock":
        # the directory tmux puts the socket in (it ignores a TMUX_TMPDIR that is not a dir)
        base = env.get("TMUX_TMPDIR") or ""
        base = os.path.realpath(base) if base and os.path.isdir(base) else "/tmp"
        path = Path(base) / f"tmux-{os.getuid()}" / f"{socket_name}.planeai-lock"
        with cls._registry_lock:
            lock = cls._registry.get(str(path))
            if lock is None:
                lock = cls._registry[str(path)] = cls(path)
            return lock

    def __enter__(self) -> "ServerLock":
        self._rlock.acquire()
        if self._depth == 0:
            self._fd = self._open_locked()
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None
        self._rlock.release()

    def _open_locked(self) -> int | None:
        try:
            # tmux makes this directory 0700 itself; making it first the same way is fine
            self.path.parent.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            log.debug("no tmux server lock %s: %s", self.path, e)
            return None  # unlocked beats unusable
        # a holder that hangs (stopped, or waiting on a hung server) must not hang us forever
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    log.warning("tmux server lock %s held for %ss; going on without it",
                                self.path, LOCK_TIMEOUT)
                    break
                time.sleep(0.002)
            except OSError:
                break
        os.close(fd)
        return None


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


class TmuxCommandError(BackendError):
    """tmux answered a command with %error; the message is tmux's text."""

    def __init__(self, message: str, command: list[str] | None = None) -> None:
        super().__init__(message)
        self.command = command


class TmuxControlClosed(BackendError):
    """The control client is not running (never started, closed, or the server went away)."""


class TmuxTimeout(BackendError):
    """tmux did not answer a command in time."""


def quote_arg(arg: str) -> str:
    """Quote one argument for tmux's command parser so it arrives verbatim."""
    if "\0" in arg:
        raise ValueError("tmux arguments cannot contain NUL")
    if _SAFE.fullmatch(arg) and not arg.startswith("%"):
        return arg
    out: list[str] = []
    run: list[str] = []
    for ch in arg:
        o = ord(ch)
        if ch == "'" or o < 32 or o == 127:
            if run:
                out.append("'" + "".join(run) + "'")
                run = []
            out.append("\"'\"" if ch == "'" else '"\\%03o"' % o)
        else:
            run.append(ch)
    if run or not out:
        out.append("'" + "".join(run) + "'")
    return "".join(out)


def command_line(args: Iterable[str]) -> str:
    """One control-mode input line for the command ``args`` (an argv list)."""
    args = list(args)
    if not args:
        raise ValueError("empty tmux command")
    return " ".join(quote_arg(a) for a in args)


def unescape_output(data: bytes) -> bytes:
    """Decode tmux's %output escaping (octal ``\\ooo`` for bytes < 32 and backslash)."""
    if b"\\" not in data:
        return data
    return _OCTAL.sub(lambda m: bytes((int(m.group(1), 8) & 0xFF,)), data)


def _decode(line: bytes) -> str:
    return line.decode("utf-8", "replace")


def pane_target(target: str) -> str:
    """``=NAME`` (an exact session) -> ``=NAME:`` so it works where a pane is expected."""
    if target.startswith("=") and ":" not in target:
        return target + ":"
    return target


class _Pending:
    __slots__ = ("event", "lines", "error", "blocks", "closed", "argv", "abandoned", "on_done")

    def __init__(self, argv: list[str], blocks: int) -> None:
        self.event = threading.Event()
        self.lines: list[str] = []
        self.error: str | None = None
        self.blocks = blocks  # -1: collect until the marker block
        self.closed = False
        self.argv = argv
        self.abandoned = False
        self.on_done: Callable[["_Pending"], None] | None = None  # runs on the reader thread


class _Conn:
    """One ``tmux -C`` process with its reader thread."""

    def __init__(
        self,
        owner: "TmuxControl",
        attach_argv: list[str],
        label: str,
        forward_notifications: bool,
    ) -> None:
        self.owner = owner
        self.label = label
        self.forward_notifications = forward_notifications
        self._write_lock = threading.Lock()  # order of lines on stdin == order in _pending
        self._plock = threading.Lock()  # guards _pending and the dead flag
        self._pending: collections.deque[_Pending] = collections.deque()
        self._attached = threading.Event()
        self._attach_error: str | None = None
        self._dead = threading.Event()
        self._exit_reason = ""
        argv = [owner.tmux_bin, "-L", owner.socket_name]
        if owner.config_file is not None:
            argv += ["-f", owner.config_file]
        argv += ["-C", *attach_argv]
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=owner.env,
                cwd="/",
                bufsize=0,
                start_new_session=True,
            )
        except OSError as e:
            raise TmuxControlClosed(f"cannot run {owner.tmux_bin}: {e}") from e
        self._stdout = os.fdopen(self.proc.stdout.fileno(), "rb", buffering=1 << 16, closefd=False)
        self.reader = threading.Thread(
            target=self._read_loop, name=f"tmux-control-{label}", daemon=True
        )
        self.reader.start()

    # -- state ---------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return not self._dead.is_set() and self.proc.poll() is None

    def wait_attached(self, timeout: float) -> None:
        if not self._attached.wait(timeout):
            if self._dead.is_set():
                raise TmuxControlClosed(self._closed_message())
            raise TmuxTimeout(f"tmux control client ({self.label}) did not attach in {timeout}s")
        if self._attach_error is not None:
            raise TmuxCommandError(self._attach_error)
        if self._dead.is_set():
            raise TmuxControlClosed(self._closed_message())

    def _closed_message(self) -> str:
        reason = f": {self._exit_reason}" if self._exit_reason else ""
        return f"tmux control client ({self.label}) is closed{reason}"

    # -- writing -------------------------------------------------------------------------------

    def submit_many(
        self, cmds: list[list[str]], on_done: Callable[[_Pending], None] | None = None
    ) -> list[_Pending]:
        lines: list[bytes] = []
        pendings: list[_Pending] = []
        for argv in cmds:
            line = command_line(argv)
            multi = argv[0] in _MULTI_BLOCK
            if multi:
                line += "\n" + command_line(["display-message", "-p", _MARKER])
            lines.append(line.encode("utf-8") + b"\n")
            pendings.append(_Pending(list(argv), -1 if multi else 1))
            pendings[-1].on_done = on_done
        data = b"".join(lines)
        with self._write_lock:
            with self._plock:
                if self._dead.is_set():
                    raise TmuxControlClosed(self._closed_message())
                self._pending.extend(pendings)
            try:
                self.proc.stdin.write(data)
            except (OSError, ValueError) as e:
                # The reader will notice EOF and fail everything pending.
                self._mark_dead(f"write failed: {e}")
                raise TmuxControlClosed(self._closed_message()) from e
        return pendings

    def wait(self, p: _Pending, timeout: float) -> list[str]:
        if threading.current_thread() is self.reader:
            raise RuntimeError("TmuxControl.command() called from the reader thread (listener)")
        if not p.event.wait(timeout):
            p.abandoned = True
            raise TmuxTimeout(f"tmux did not answer {p.argv[:3]!r} within {timeout}s")
        if p.closed:
            raise TmuxControlClosed(self._closed_message())
        if p.error is not None:
            raise TmuxCommandError(p.error, p.argv)
        return p.lines

    def close(self, timeout: float = 2.0) -> None:
        with self.owner.lock:
            self._close(timeout)

    def _close(self, timeout: float) -> None:
        was_alive = self.proc.poll() is None
        with self._write_lock:
            try:
                self.proc.stdin.close()  # EOF on stdin: tmux detaches the control client
            except OSError:
                pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)
        if was_alive:
            self.owner._wait_client_gone(self.proc.pid, timeout)
        if threading.current_thread() is not self.reader:
            self.reader.join(timeout)
        self._mark_dead("closed")
        for f in (self._stdout, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass

    # -- reading -------------------------------------------------------------------------------

    def _mark_dead(self, reason: str) -> None:
        with self._plock:
            if self._dead.is_set():
                return
            if not self._exit_reason:
                self._exit_reason = reason
            self._dead.set()
            pend = list(self._pending)
            self._pending.clear()
        for p in pend:
            p.closed = True
            p.event.set()
        self._attached.set()

    def _read_loop(self) -> None:
        owner = self.owner
        readline = self._stdout.readline
        block: tuple[bytes, bytes] | None = None  # (b"TIME NUM", flags)
        block_lines: list[bytes] = []
        marker = _MARKER.encode()
        try:
            while True:
                raw = readline()
                if not raw:
                    break
                line = raw[:-1] if raw.endswith(b"\n") else raw
                if block is not None:
                    if line.startswith((b"%end ", b"%error ")):
                        kind, _, rest = line.partition(b" ")
                        key, _, flags = rest.rpartition(b" ")
                        if key == block[0] and flags == block[1]:
                            self._finish_block(
                                block[1] == b"1", kind == b"%error", block_lines, marker
                            )
                            block = None
                            block_lines = []
                            continue
                    block_lines.append(line)
                    continue
                if line.startswith(b"%output "):
                    if owner._output_listeners:
                        parts = line.split(b" ", 2)
                        data = parts[2] if len(parts) > 2 else b""
                        owner._emit_output(parts[1].decode(), unescape_output(data))
                    continue
                if line.startswith(b"%extended-output "):
                    if owner._output_listeners:
                        head, sep, data = line.partition(b" : ")
                        pane = head.split(b" ", 2)[1]
                        owner._emit_output(pane.decode(), unescape_output(data))
                    continue
                if line.startswith(b"%begin "):
                    rest = line[7:]
                    key, _, flags = rest.rpartition(b" ")
                    block = (key, flags)
                    block_lines = []
                    continue
                if line.startswith(b"%"):
                    self._notification(_decode(line[1:]))
                # anything else (stray text) is ignored
        except (OSError, ValueError) as e:
            log.debug("tmux control reader (%s) stopped: %s", self.label, e)
        finally:
            if not self._exit_reason:
                self._exit_reason = self._stderr_text()
            self._mark_dead(self._exit_reason or "tmux control client exited")
            owner._conn_died(self)

    def _stderr_text(self) -> str:
        try:
            self.proc.wait(2.0)
            return self.proc.stderr.read(4096).decode("utf-8", "replace").strip()
        except (OSError, ValueError, subprocess.TimeoutExpired):
            return ""

    def _finish_block(self, ours: bool, error: bool, lines: list[bytes], marker: bytes) -> None:
        if not ours:
            # flags 0: the attach command given on the command line (or a hook's output).
            if not self._attached.is_set():
                if error:
                    self._attach_error = "\n".join(_decode(x) for x in lines) or "attach failed"
                self._attached.set()
            return
        with self._plock:
            p = self._pending[0] if self._pending else None
            if p is None:
                return
            if p.blocks == 1:
                self._pending.popleft()
                done = True
            else:
                done = lines == [marker] and not error
                if done:
                    self._pending.popleft()
        if p.blocks == 1:
            p.lines = [_decode(x) for x in lines]
            if error:
                p.error = "\n".join(p.lines) or "tmux error"
        elif not done:
            if error and p.error is None:
                p.error = "\n".join(_decode(x) for x in lines) or "tmux error"
            elif not error:
                p.lines.extend(_decode(x) for x in lines)
            return
        p.event.set()
        if p.on_done is not None:
            try:
                p.on_done(p)
            except Exception:
                log.exception("tmux control completion callback failed")

    def _notification(self, text: str) -> None:
        name, _, rest = text.partition(" ")
        if name == "exit":
            self._exit_reason = rest or "exit"
            return  # reported once, by _conn_died, when the stream ends
        if name == "pause":
            self.owner._on_pause(self, rest.strip())
        if not (self.forward_notifications or name in ("pause", "continue")):
            return
        splits = _NAME_SPLITS.get(name)
        if not rest:
            args: list[str] = []
        elif splits is None or splits < 0:
            args = rest.split(" ")
        else:
            args = rest.split(" ", splits)
        if not self.forward_notifications:
            args = [*args, self.label]
        self.owner._emit_event(name, args)


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
    ) -> None:
        self.socket_name = socket_name
        self.tmux_bin = shutil.which(tmux_bin) or tmux_bin
        # no TMUX/TMUX_PANE either: a client inside a pane would talk to that pane's server
        self.env = server_env(dict(os.environ if env is None else env))
        self.lock = ServerLock.of(socket_name, self.env)
        self._pid = os.getpid()
        self.config_file = config_file
        self.pause_after = pause_after
        self.start_timeout = start_timeout
        self._output_listeners: list[Callable[[str, bytes], None]] = []
        self._event_listeners: list[Callable[[str, list[str]], None]] = []
        self._main: _Conn | None = None
        self._watchers: dict[str, _Conn] = {}
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
            conn = _Conn(
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
                        ["set-option", "-w", "-t", "=" + CONTROL_SESSION + ":", "remain-on-exit", "on"],
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

    def _conn(self) -> _Conn:
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
                conn = _Conn(
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

    def _on_pause(self, conn: _Conn, pane: str) -> None:
        # tmux dropped the backlog of a pane we fell behind on; resume at once. Listeners got a
        # ("pause", [pane, ...]) event and should resync the pane with capture_pane.
        # tmux answers with a "%continue %N" line inside the command's own %begin block.
        def done(p: _Pending) -> None:
            if p.error is None:
                extra = [] if conn is self._main else [conn.label]
                self._emit_event("continue", [pane, *extra])

        try:
            conn.submit_many([["refresh-client", "-A", f"{pane}:continue"]], on_done=done)
        except TmuxControlClosed:
            pass

    def _conn_died(self, conn: _Conn) -> None:
        if conn is self._main:
            self._emit_event("exit", [conn._exit_reason] if conn._exit_reason else [])
            return
        with self._lock:
            if self._watchers.get(conn.label) is conn:
                del self._watchers[conn.label]
        if not self._closing:
            self._emit_event("watch-ended", [conn.label])


__all__ = [
    "CONTROL_SESSION",
    "ServerLock",
    "TmuxCommandError",
    "TmuxControl",
    "TmuxControlClosed",
    "TmuxTimeout",
    "command_line",
    "pane_target",
    "quote_arg",
    "server_env",
    "unescape_output",
]
