"""The daemon's event loop and its client connections, over a Unix socket.

One thread does everything through one selector: the listening socket, every client socket
and every PTY. Nothing in the loop blocks:

- A client's frames are read as they come; a client whose queue of unsent bytes grows past
  ``client_buffer`` (it stopped reading) is dropped, and the agents and the other clients
  never wait for it.
- PTY readiness goes to ``sessions`` (the daemon's PTY sessions), which hands output frames
  back through ``_send``; SIGCHLD wakes the loop so that ended children are reaped at once,
  and the loop runs the kill timers (SIGHUP -> SIGTERM -> SIGKILL).
- Requests are answered by ``requests``; the ``hello`` handshake is the connection's own.

Security: the socket is mode 0600 inside a 0700 directory that we own, and every connection's
peer credentials (SO_PEERCRED) must carry our uid; anything else is refused and closed.
The entry point (arguments, detaching, logging) is ``__main__``; the wire format ``protocol``.
"""

from __future__ import annotations

import collections
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

from planeai.backends.daemon import DaemonPaths, private_dir
from planeai.backends.daemon import protocol as P
from planeai.backends.daemon.requests import DEFERRED, Requests
from planeai.backends.daemon.sessions import SCROLLBACK, RequestError, Sessions
from planeai.backends.pty import READ_SIZE
from planeai.errors import PlaneaiError

log = logging.getLogger("planeai.backends.daemon")

CLIENT_BUFFER = 8 * 1024 * 1024     # queued bytes per client before it is dropped
PEERCRED = struct.Struct("3i")      # struct ucred: pid, uid, gid

PeerCheck = Callable[[int, int, int], bool]


def same_user(pid: int, uid: int, gid: int) -> bool:
    """The default peer check: True when the peer runs as this daemon's uid."""
    return uid == os.getuid()


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


class Server:
    """The daemon: ``bind``, ``install_signals``, then ``serve_forever`` (see ``__main__``)."""

    def __init__(self, paths: DaemonPaths, *, client_buffer: int = CLIENT_BUFFER,
                 scrollback: int = SCROLLBACK, peer_allowed: PeerCheck = same_user) -> None:
        self.paths = paths
        self.client_buffer = client_buffer
        self.peer_allowed = peer_allowed
        self.clients: dict[int, Client] = {}
        self.sel = selectors.DefaultSelector()
        self.sessions = Sessions(self.sel, self._send, scrollback=scrollback)
        self.requests = Requests(self)
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
        """Listen on the private socket (replacing a dead daemon's file). Raises OSError
        when it cannot, BackendError for a directory another user owns."""
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
        """Route SIGCHLD, SIGTERM and SIGINT to the loop; ignore SIGHUP and SIGPIPE."""
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
        """Run the loop until a shutdown has ended every session; returns then."""
        log.info("daemon %d serving on %s", os.getpid(), self.paths.socket)
        while True:
            if self.stopping and not self.sessions.any_alive():
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
                            self.sessions.on_readable(obj)
                        if mask & selectors.EVENT_WRITE and obj.fd_open:
                            self.sessions.on_writable(obj)
                except Exception:  # one broken peer must never take the daemon down
                    log.exception("error handling %s", kind)
                    if kind == "client":
                        self._drop(obj, "internal error")
            if self._term_requested and not self.stopping:
                self.begin_shutdown(None)
            now = time.monotonic()
            if self._reap_due or not events or now - self._last_reap > 1.0:
                self._reap_due = False
                self._last_reap = now
                self.sessions.reap()
            self.sessions.kill_timers()
        self._finish_shutdown()

    def _timeout(self) -> float:
        deadline = self.sessions.next_deadline()
        if deadline is None:
            # SIGCHLD wakes us; the periodic pass only guards against a lost signal
            return 1.0
        return max(0.0, min(deadline - time.monotonic(), 1.0))

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
                        self.sessions.queue_input(self.sessions.get(name), data)
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
            s = self.sessions.find(name)
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
        handler = self.requests.handler(op)
        if handler is None:
            self._send_control(c, {"id": rid, "ok": False, "error": f"unknown request {op!r}"})
            return

        def reply(result=None) -> None:
            self._send_control(c, {"id": rid, "ok": True, "result": result})

        try:
            result = handler(c, msg, reply)
        except (RequestError, PlaneaiError) as e:
            self._send_control(c, {"id": rid, "ok": False, "error": str(e)})
            return
        except (KeyError, TypeError, ValueError) as e:
            self._send_control(c, {"id": rid, "ok": False,
                                   "error": f"bad {op} request: {type(e).__name__}: {e}"})
            return
        if result is not DEFERRED:
            reply(result)

    # ------------------------------------------------------------------ shutdown
    def begin_shutdown(self, reply) -> None:
        """Stop every session, then the loop; ``reply`` (if given) gets ``{"killed": n}``
        once everything has ended."""
        live = [s for s in self.sessions.values() if s.alive]
        killed = len(live)
        if reply is not None:
            self._shutdown_waiters.append(lambda: reply({"killed": killed}))
        if self.stopping:
            return
        self.stopping = True
        log.info("shutting down: stopping %d session(s)", killed)
        for s in live:
            self.sessions.start_kill(s, 3.0, lambda _code: None)

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
        self.sessions.close_all()
        if self._listen is not None:
            try:
                os.unlink(self.paths.socket)
            except OSError:
                pass
            self._listen.close()
        log.info("daemon %d stopped", os.getpid())

