"""The daemon process: owns agent PTYs and serves them over a Unix socket.

One thread does everything through one selector: the listening socket, every client socket
and every PTY. Nothing in the loop blocks:

- PTY output is always read at once, fed to the session's ``TerminalScreen`` (screen plus
  bounded scrollback) and queued to each subscribed client. A client whose queue grows past
  ``client_buffer`` bytes (it stopped reading) is dropped; the agent and the other clients
  never wait for it.
- Input for an agent that does not read stdin is queued (bounded) and written when the PTY
  takes it.
- ``kill`` escalates SIGHUP -> SIGTERM -> SIGKILL on timers; its answer is sent when the
  child has been reaped (SIGCHLD wakes the loop).

Security: the socket is mode 0600 inside a 0700 directory that we own, and every connection's
peer credentials (SO_PEERCRED) must carry our uid; anything else is refused and closed.

Over 450 lines on purpose: the loop, its clients and its PTYs share one selector, one thread
and the same buffers, so ``Server`` stays one class. What is not that state lives elsewhere:
the PTY lifecycle in ``backends/pty.py``, the wire format in ``protocol``, the entry point in
``__main__``.
"""

from __future__ import annotations

import base64
import collections
import errno
import fcntl
import logging
import os
import selectors
import signal
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Callable

from planeai.backends.base import bracketed, check_name
from planeai.backends.pty import (KILL_SIGNALS, READ_SIZE, SIZE_MAX, PtySession, check_size,
                                  kill_wait, signal_session, spawn_pty, status_code)
from planeai.backends.daemon import DaemonPaths, private_dir
from planeai.backends.daemon import protocol as P
from planeai.errors import PlaneaiError
from planeai.terminal.screen import TerminalScreen

log = logging.getLogger("planeai.backends.daemon")

CLIENT_BUFFER = 8 * 1024 * 1024     # queued bytes per client before it is dropped
INPUT_BUFFER = 4 * 1024 * 1024      # queued input per session before writes are refused
SCROLLBACK = 10000
PEERCRED = struct.Struct("3i")      # struct ucred: pid, uid, gid

PeerCheck = Callable[[int, int, int], bool]


def same_user(pid: int, uid: int, gid: int) -> bool:
    return uid == os.getuid()


class RequestError(Exception):
    """A request that fails without harming the connection (unknown session, bad args)."""


@dataclass(eq=False)
class Client:
    sock: socket.socket
    peer: tuple[int, int, int]
    reader: P.FrameReader = field(default_factory=P.FrameReader)
    out: collections.deque = field(default_factory=collections.deque)
    out_size: int = 0
    greeted: bool = False
    subs: set = field(default_factory=set)
    writing: bool = False
    closed: bool = False

    @property
    def label(self) -> str:
        return f"client pid {self.peer[0]} fd {self.sock.fileno() if not self.closed else -1}"


@dataclass(eq=False)
class DSession(PtySession):
    started_wall: float = 0.0
    argv: list = field(default_factory=list)
    fd: int = -1
    pid: int = 0
    alive: bool = True
    inbuf: bytearray = field(default_factory=bytearray)
    subscribers: set = field(default_factory=set)
    kill_waiters: list = field(default_factory=list)   # callbacks(exit_code)
    kill_stage: int = -1
    kill_deadline: float = 0.0
    kill_timeout: float = 5.0
    fd_open: bool = True


def _default_signals() -> None:
    """In the forked child before exec: ignored signals survive exec, so the agent must not
    inherit the daemon's (it ignores SIGHUP and SIGPIPE; Python ignores SIGPIPE)."""
    for sig in (signal.SIGHUP, signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD,
                signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


class Server:
    def __init__(self, paths: DaemonPaths, *, client_buffer: int = CLIENT_BUFFER,
                 scrollback: int = SCROLLBACK, peer_allowed: PeerCheck = same_user) -> None:
        self.paths = paths
        self.client_buffer = client_buffer
        self.scrollback = scrollback
        self.peer_allowed = peer_allowed
        self.sessions: dict[str, DSession] = {}
        self.clients: dict[int, Client] = {}
        self.sel = selectors.DefaultSelector()
        self.started = time.time()
        self.stopping = False
        self._shutdown_waiters: list[Callable[[], None]] = []
        self._lock_fd = -1
        self._listen: socket.socket | None = None
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        self.dropped = 0
        self.rejected = 0
        self._term_requested = False
        self._reap_due = False
        self._last_reap = 0.0

    # ------------------------------------------------------------------ setup
    def acquire_lock(self) -> bool:
        """Take the pid/lock file; False when another daemon holds it."""
        private_dir(self.paths.runtime_dir)
        fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.set_inheritable(fd, False)
        self._lock_fd = fd
        return True

    def bind(self) -> None:
        path = self.paths.socket
        private_dir(path.parent)
        # we hold the lock: any socket file left here is from a dead daemon
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            s.bind(str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        s.listen(64)
        s.setblocking(False)
        self._listen = s
        self.sel.register(s, selectors.EVENT_READ, ("listen", None))
        self.sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))

    def install_signals(self) -> None:
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        # handlers only set a flag: the loop acts on it (the wakeup fd ends its select)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    def _on_term(self, *_args) -> None:
        self._term_requested = True

    # ------------------------------------------------------------------ loop
    def serve_forever(self) -> None:
        log.info("daemon %d serving on %s", os.getpid(), self.paths.socket)
        while True:
            if self.stopping and not any(s.alive for s in self.sessions.values()):
                break
            try:
                events = self.sel.select(self._timeout())
            except InterruptedError:
                events = []
            for key, mask in events:
                kind, obj = key.data
                try:
                    if kind == "listen":
                        self._accept()
                    elif kind == "wake":   # SIGCHLD (or SIGTERM) arrived
                        self._drain_wake()
                        self._reap_due = True
                    elif kind == "client":
                        if mask & selectors.EVENT_READ and not obj.closed:
                            self._client_read(obj)
                        if mask & selectors.EVENT_WRITE and not obj.closed:
                            self._client_flush(obj)
                    elif kind == "pty":
                        if mask & selectors.EVENT_READ and obj.fd_open:
                            self._pty_read(obj)
                        if mask & selectors.EVENT_WRITE and obj.fd_open:
                            self._pty_flush(obj)
                except Exception:  # one broken peer must never take the daemon down
                    log.exception("error handling %s", kind)
                    if kind == "client":
                        self._drop(obj, "internal error")
            if self._term_requested and not self.stopping:
                self._begin_shutdown(None)
            now = time.monotonic()
            if self._reap_due or not events or now - self._last_reap > 1.0:
                self._reap_due = False
                self._last_reap = now
                self._reap()
            self._kill_timers()
        self._finish_shutdown()

    def _timeout(self) -> float:
        deadlines = [s.kill_deadline for s in self.sessions.values() if s.kill_stage >= 0]
        if not deadlines:
            # SIGCHLD wakes us; the periodic pass only guards against a lost signal
            return 1.0
        return max(0.0, min(min(deadlines) - time.monotonic(), 1.0))

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    # ------------------------------------------------------------------ clients
    def _accept(self) -> None:
        assert self._listen is not None
        while True:
            try:
                conn, _ = self._listen.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.warning("accept failed: %s", e)
                return
            try:
                cred = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEERCRED.size)
                peer = PEERCRED.unpack(cred)
            except OSError:
                conn.close()
                continue
            if not self.peer_allowed(*peer):
                self.rejected += 1
                log.warning("refused connection from pid %d uid %d: not this daemon's user",
                            peer[0], peer[1])
                try:
                    conn.setblocking(False)
                    conn.send(P.encode_control({"ok": False, "error":
                                                f"permission denied: uid {peer[1]} may not use "
                                                f"the planeai daemon of uid {os.getuid()}"}))
                except OSError:
                    pass
                conn.close()
                continue
            conn.setblocking(False)
            c = Client(conn, peer)
            self.clients[conn.fileno()] = c
            self.sel.register(conn, selectors.EVENT_READ, ("client", c))

    def _client_read(self, c: Client) -> None:
        try:
            data = c.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(c, None)
            return
        try:
            frames = c.reader.feed(data)
        except P.ProtocolError as e:
            self._drop(c, f"protocol error: {e}")
            return
        for kind, payload in frames:
            if c.closed:
                return
            try:
                if kind == P.CONTROL:
                    self._request(c, P.decode_control(payload))
                elif kind == P.INPUT:
                    if not c.greeted:
                        raise P.ProtocolError("input before hello")
                    name, data = P.decode_data(payload)
                    try:
                        self._queue_input(self._get(name), data)
                    except RequestError as e:
                        self._send_control(c, {"event": "input_error", "name": name,
                                               "error": str(e)})
                else:
                    raise P.ProtocolError("clients may not send output frames")
            except P.ProtocolError as e:
                self._drop(c, f"protocol error: {e}")
                return

    def _send(self, c: Client, frame: bytes) -> None:
        if c.closed:
            return
        if not c.out:
            try:
                n = c.sock.send(frame)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                self._drop(c, None)
                return
            if n == len(frame):
                return
            frame = frame[n:]
        c.out.append(frame)
        c.out_size += len(frame)
        if c.out_size > self.client_buffer:
            self._drop(c, f"too slow: {c.out_size} bytes unread (limit {self.client_buffer})")
            return
        if not c.writing:
            c.writing = True
            self.sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, ("client", c))

    def _client_flush(self, c: Client) -> None:
        while c.out:
            head = c.out[0]
            try:
                n = c.sock.send(head)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._drop(c, None)
                return
            c.out_size -= n
            if n < len(head):
                c.out[0] = head[n:]
                return
            c.out.popleft()
        if c.writing:
            c.writing = False
            self.sel.modify(c.sock, selectors.EVENT_READ, ("client", c))

    def _send_control(self, c: Client, msg: dict) -> None:
        self._send(c, P.encode_control(msg))

    def _drop(self, c: Client, reason: str | None) -> None:
        if c.closed:
            return
        if reason:
            self.dropped += 1
            log.warning("dropping %s: %s", c.label, reason)
        fd = c.sock.fileno()
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.closed = True
        self.clients.pop(fd, None)
        for name in c.subs:
            s = self.sessions.get(name)
            if s is not None:
                s.subscribers.discard(c)
        c.subs.clear()
        c.out.clear()
        try:
            c.sock.close()
        except OSError:
            pass

    # ------------------------------------------------------------------ requests
    def _request(self, c: Client, msg: dict) -> None:
        rid = msg.get("id")
        op = msg.get("op")
        if not c.greeted:
            if op != "hello":
                raise P.ProtocolError("the first request must be hello")
            if msg.get("version") != P.VERSION:
                self._send_control(c, {"id": rid, "ok": False, "error":
                                       f"protocol version {msg.get('version')!r} is not "
                                       f"supported; the daemon speaks {P.VERSION}"})
                self._drop(c, f"version {msg.get('version')!r}")
                return
            c.greeted = True
            self._send_control(c, {"id": rid, "ok": True, "result": {
                "version": P.VERSION, "pid": os.getpid(), "started": self.started}})
            return
        if not isinstance(op, str) or not hasattr(self, f"op_{op}"):
            self._send_control(c, {"id": rid, "ok": False, "error": f"unknown request {op!r}"})
            return

        def reply(result=None) -> None:
            self._send_control(c, {"id": rid, "ok": True, "result": result})

        try:
            result = getattr(self, f"op_{op}")(c, msg, reply)
        except (RequestError, PlaneaiError) as e:
            self._send_control(c, {"id": rid, "ok": False, "error": str(e)})
            return
        except (KeyError, TypeError, ValueError) as e:
            self._send_control(c, {"id": rid, "ok": False,
                                   "error": f"bad {op} request: {type(e).__name__}: {e}"})
            return
        if result is not _DEFERRED:
            reply(result)

    def _get(self, name) -> DSession:
        s = self.sessions.get(name) if isinstance(name, str) else None
        if s is None:
            raise RequestError(f"no daemon session {name!r}")
        return s

    @staticmethod
    def _info(s: DSession) -> dict:
        return {"name": s.name, "alive": s.alive, "exit_code": s.exit_code, "pid": s.pid}

    def op_status(self, c, msg, reply):
        return {"pid": os.getpid(), "started": self.started, "version": P.VERSION,
                "socket": str(self.paths.socket), "clients": len(self.clients),
                "dropped": self.dropped, "rejected": self.rejected,
                "sessions": [self._info(s) for s in self.sessions.values()]}

    def op_list(self, c, msg, reply):
        return [self._info(s) for s in self.sessions.values()]

    def op_info(self, c, msg, reply):
        s = self.sessions.get(msg["name"])
        return self._info(s) if s else None

    def op_spawn(self, c, msg, reply):
        if self.stopping:
            raise RequestError("the daemon is shutting down")
        name = check_name(str(msg["name"]))
        argv = [str(a) for a in msg["argv"]]
        env = {str(k): str(v) for k, v in dict(msg["env"]).items()}
        cols, rows = check_size(msg.get("cols", 120), msg.get("rows", 40))
        old = self.sessions.get(name)
        if old is not None:
            if old.alive:
                raise RequestError(f"session {name} is already running")
            self._remove(old)
        if not argv:
            raise RequestError("empty argv")
        # checked before the fork; a failure in the child before exec ends the child
        proc = spawn_pty(argv, cwd=str(msg["cwd"]), env=env, cols=cols, rows=rows,
                         preexec=_default_signals)
        s = DSession(name, proc, TerminalScreen(cols, rows, scrollback=self.scrollback),
                     time.monotonic(), started_wall=time.time(), argv=argv, fd=proc.fd,
                     pid=proc.pid)
        os.set_blocking(s.fd, False)
        self.sessions[name] = s
        self.sel.register(s.fd, selectors.EVENT_READ, ("pty", s))
        log.info("spawned %s pid %d: %s", name, s.pid, argv[0])
        return self._info(s)

    def op_write(self, c, msg, reply):
        self._queue_input(self._get(msg["name"]), base64.b64decode(msg["data"]))
        return None

    def op_paste(self, c, msg, reply):
        s = self._get(msg["name"])
        self._queue_input(s, bracketed(str(msg["text"]), s.screen.bracketed_paste))
        return None

    def op_resize(self, c, msg, reply):
        s = self._get(msg["name"])
        cols = max(1, min(int(msg["cols"]), SIZE_MAX))
        rows = max(1, min(int(msg["rows"]), SIZE_MAX))
        s.screen.resize(cols, rows)
        if s.fd_open:
            try:
                s.proc.setwinsize(rows, cols)
            except OSError:
                pass
        return None

    def op_snapshot(self, c, msg, reply):
        s = self._get(msg["name"])
        return self._snapshot(s)

    def _snapshot(self, s: DSession) -> dict:
        scr = s.screen
        now = time.monotonic()
        return {
            "lines": scr.text_lines(),
            "ansi": base64.b64encode(scr.ansi_snapshot()).decode("ascii"),
            "cursor": list(scr.cursor), "cols": scr.cols, "rows": scr.rows,
            "alive": s.alive, "exit_code": s.exit_code,
            "seconds_since_output": now - s.last_output if s.last_output else None,
            "seconds_since_start": now - s.started,
            "title": scr.title,
        }

    def op_scrollback(self, c, msg, reply):
        s = self._get(msg["name"])
        lines = s.screen.scrollback() + s.screen.text_lines()
        while lines and not lines[-1].strip():
            lines.pop()
        return lines

    def op_subscribe(self, c, msg, reply):
        """From now on this client gets the session's output; with ``snapshot`` the reply
        carries the current screen, so screen + stream have no gap and no overlap."""
        s = self._get(msg["name"])
        s.subscribers.add(c)
        c.subs.add(s.name)
        return self._snapshot(s) if msg.get("snapshot") else self._info(s)

    def op_unsubscribe(self, c, msg, reply):
        s = self.sessions.get(msg["name"])
        if s is not None:
            s.subscribers.discard(c)
        c.subs.discard(msg["name"])
        return None

    def op_kill(self, c, msg, reply):
        s = self._get(msg["name"])
        if not s.alive:
            return s.exit_code
        self._start_kill(s, float(msg.get("wait", 5.0)), reply)
        return _DEFERRED

    def op_forget(self, c, msg, reply):
        s = self.sessions.get(msg["name"])
        if s is None:
            return None
        if not s.alive:
            self._remove(s)
            return None

        def done(_code) -> None:
            if self.sessions.get(s.name) is s:
                self._remove(s)
            reply(None)

        self._start_kill(s, float(msg.get("wait", 5.0)), done)
        return _DEFERRED

    def op_shutdown(self, c, msg, reply):
        self._begin_shutdown(reply)
        return _DEFERRED

    # ------------------------------------------------------------------ PTYs
    def _pty_read(self, s: DSession) -> None:
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
            self._reap()
            return
        self._output(s, data)

    def _output(self, s: DSession, data: bytes) -> None:
        replies = s.feed(data)  # one thread: the lock is not needed
        if replies and s.fd_open:
            self._queue_input(s, replies, check=False)
        if s.subscribers:
            frames = P.split_data(P.OUTPUT, s.name, data)
            for c in list(s.subscribers):
                for f in frames:
                    self._send(c, f)

    def _queue_input(self, s: DSession, data: bytes, check: bool = True) -> None:
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
            self._pty_flush(s)

    def _pty_flush(self, s: DSession) -> None:
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

    def _reap(self) -> None:
        for s in list(self.sessions.values()):
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
                self._send_control(c, {"event": "exit", "name": s.name, "code": code})
            waiters, s.kill_waiters = s.kill_waiters, []
            for w in waiters:
                try:
                    w(code)
                except Exception:
                    log.exception("kill waiter")

    def _start_kill(self, s: DSession, timeout: float, waiter) -> None:
        s.kill_waiters.append(waiter)
        if s.kill_stage >= 0:
            return  # already on its way down
        s.kill_timeout = max(0.1, timeout)
        s.kill_stage = 0
        signal_session(s.pid, KILL_SIGNALS[0])
        s.kill_deadline = time.monotonic() + kill_wait(KILL_SIGNALS[0], s.kill_timeout)

    def _kill_timers(self) -> None:
        now = time.monotonic()
        for s in list(self.sessions.values()):
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

    def _remove(self, s: DSession) -> None:
        self._close_pty(s)
        for c in list(s.subscribers):
            c.subs.discard(s.name)
        s.subscribers.clear()
        self.sessions.pop(s.name, None)
        s.screen.close()

    # ------------------------------------------------------------------ shutdown
    def _begin_shutdown(self, reply) -> None:
        live = [s for s in self.sessions.values() if s.alive]
        killed = len(live)
        if reply is not None:
            self._shutdown_waiters.append(lambda: reply({"killed": killed}))
        if self.stopping:
            return
        self.stopping = True
        log.info("shutting down: stopping %d session(s)", killed)
        for s in live:
            self._start_kill(s, 3.0, lambda _code: None)

    def _finish_shutdown(self) -> None:
        for w in self._shutdown_waiters:
            try:
                w()
            except Exception:
                pass
        # give the answers a moment to leave, without blocking on a stuck client
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and any(c.out for c in self.clients.values()):
            for c in list(self.clients.values()):
                if c.out:
                    self._client_flush(c)
            time.sleep(0.01)
        for c in list(self.clients.values()):
            self._drop(c, None)
        for s in list(self.sessions.values()):
            self._close_pty(s)
        if self._listen is not None:
            try:
                os.unlink(self.paths.socket)
            except OSError:
                pass
            self._listen.close()
        log.info("daemon %d stopped", os.getpid())


_DEFERRED = object()
