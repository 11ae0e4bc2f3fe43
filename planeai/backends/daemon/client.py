"""Talking to the daemon: one socket connection, requests answered in order, output pushed.

A reader thread takes every frame off the socket: answers wake the caller waiting for them,
output frames and events go to the ``on_output`` / ``on_event`` callbacks (run on that thread:
keep them short; a client that stops reading is dropped by the daemon).
"""

from __future__ import annotations

import base64
import errno
import fcntl
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Callable

from planeai.backends.daemon import DaemonPaths
from planeai.backends.daemon import protocol as P
from planeai.errors import BackendError

OutputHandler = Callable[[str, bytes], None]
EventHandler = Callable[[dict], None]


class DaemonNotRunning(BackendError):
    pass


class ConnectionLost(BackendError):
    """The connection ended before an answer came."""


class _Pending:
    __slots__ = ("event", "msg")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.msg: dict | None = None


class DaemonClient:
    def __init__(self, path: os.PathLike | str, *, on_output: OutputHandler | None = None,
                 on_event: EventHandler | None = None, timeout: float = 5.0) -> None:
        self.path = str(path)
        self.on_output = on_output
        self.on_event = on_event
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            sock.close()
            raise DaemonNotRunning(f"the planeai daemon is not running ({self.path}: "
                                   f"{e.strerror})") from None
        except OSError as e:
            sock.close()
            raise BackendError(f"cannot reach the planeai daemon at {self.path}: "
                               f"{e.strerror or e}") from None
        sock.settimeout(None)
        self.sock = sock
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._plock = threading.Lock()
        self.closed = False
        self._closing = False
        self.close_reason = ""
        self.refused = ""   # the daemon's reason when it refused this peer
        self._reader = threading.Thread(target=self._read_loop, name="planeai-daemon-client",
                                         daemon=True)
        self._reader.start()
        try:
            self.hello = self.request("hello", version=P.VERSION, timeout=timeout)
        except ConnectionLost:
            self.close()
            if self.refused:
                raise BackendError(self.refused) from None
            # a daemon that is going away still accepted: the same as none running
            raise DaemonNotRunning(f"the planeai daemon is not running ({self.path}: "
                                   f"{self.close_reason})") from None

    # ------------------------------------------------------------------ I/O
    def _sendall(self, data: bytes) -> None:
        with self._send_lock:
            if self.closed:
                raise ConnectionLost(f"connection to the planeai daemon is closed"
                                     f"{': ' + self.close_reason if self.close_reason else ''}")
            try:
                self.sock.sendall(data)
            except OSError as e:
                raise ConnectionLost(f"lost the planeai daemon: {e.strerror or e}") from None

    def request(self, op: str, *, timeout: float = 30.0, **args) -> object:
        rid = next(self._ids)
        p = _Pending()
        with self._plock:
            self._pending[rid] = p
        try:
            try:
                frame = P.encode_control({"id": rid, "op": op, **args})
            except P.ProtocolError as e:
                raise BackendError(f"{op}: {e}") from None
            self._sendall(frame)
            if not p.event.wait(timeout):
                raise BackendError(f"the planeai daemon did not answer {op} in {timeout:.0f}s")
        finally:
            with self._plock:
                self._pending.pop(rid, None)
        msg = p.msg
        if msg is None:
            raise ConnectionLost(f"lost the planeai daemon during {op}"
                               f"{': ' + self.close_reason if self.close_reason else ''}")
        if not msg.get("ok"):
            raise BackendError(str(msg.get("error") or f"{op} failed"))
        return msg.get("result")

    def send_input(self, name: str, data: bytes) -> None:
        self._sendall(b"".join(P.split_data(P.INPUT, name, data)))

    def write(self, name: str, data: bytes) -> None:
        """Input with an answer: errors (no such session, exited) are raised here."""
        for i in range(0, max(len(data), 1), 4 << 20):
            self.request("write", name=name,
                         data=base64.b64encode(data[i:i + (4 << 20)]).decode("ascii"))

    def _read_loop(self) -> None:
        reader = P.FrameReader()
        reason = "the daemon closed the connection"
        try:
            while True:
                try:
                    data = self.sock.recv(262144)
                except OSError as e:
                    reason = str(e.strerror or e)
                    break
                if not data:
                    break
                for kind, payload in reader.feed(data):
                    if kind == P.OUTPUT:
                        name, out = P.decode_data(payload)
                        if self.on_output is not None:
                            self.on_output(name, out)
                        continue
                    msg = P.decode_control(payload)
                    rid = msg.get("id")
                    if rid is not None or "ok" in msg and "event" not in msg:
                        with self._plock:
                            p = self._pending.get(rid) if rid is not None else None
                        if p is not None:
                            p.msg = msg
                            p.event.set()
                        elif rid is None and not msg.get("ok"):
                            reason = self.refused = str(msg.get("error"))  # refused peer
                    elif self.on_event is not None:
                        self.on_event(msg)
        except P.ProtocolError as e:
            reason = f"protocol error: {e}"
        except Exception as e:  # a broken callback ends this connection, not the process
            reason = f"{type(e).__name__}: {e}"
        self.closed = True
        self.close_reason = reason
        with self._plock:
            pending = list(self._pending.values())
        for p in pending:
            p.event.set()
        if self.on_event is not None and not self._closing:
            try:
                self.on_event({"event": "disconnected", "reason": reason})
            except Exception:
                pass

    def close(self) -> None:
        self._closing = True
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self._reader is not threading.current_thread():
            self._reader.join(timeout=2)


# ---------------------------------------------------------------------- lifecycle
def daemon_pid(paths: DaemonPaths) -> int | None:
    """Pid of the daemon holding the lock file, or None when none holds it."""
    try:
        fd = os.open(paths.lock, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            text = os.read(fd, 64).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def connect(paths: DaemonPaths, *, autostart: bool = False, env: dict | None = None,
            extra_args: list[str] | None = None, **kw) -> DaemonClient:
    try:
        return DaemonClient(paths.socket, **kw)
    except DaemonNotRunning:
        if not autostart:
            raise
    start_daemon(paths, env=env, extra_args=extra_args)
    return DaemonClient(paths.socket, **kw)


def start_daemon(paths: DaemonPaths, *, env: dict | None = None, timeout: float = 15.0,
                 extra_args: list[str] | None = None) -> int:
    """Start the daemon in the background unless one runs; its pid once it answers."""
    try:
        c = DaemonClient(paths.socket)
        pid = int(c.hello["pid"])  # type: ignore[index]
        c.close()
        return pid
    except DaemonNotRunning:
        pass
    env = dict(os.environ if env is None else env)
    # the daemon imports planeai from where this process did
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    argv = [sys.executable, "-m", "planeai.backends.daemon", "--detach",
            "--runtime-dir", str(paths.runtime_dir), "--state-dir", str(paths.state_dir),
            *(extra_args or [])]
    r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout, start_new_session=True)
    if r.returncode != 0:
        err = (r.stderr or r.stdout).decode("utf-8", "replace").strip().splitlines()
        raise BackendError(f"cannot start the planeai daemon: {err[-1] if err else r.returncode}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = DaemonClient(paths.socket)
        except DaemonNotRunning:
            time.sleep(0.02)
            continue
        pid = int(c.hello["pid"])  # type: ignore[index]
        c.close()
        return pid
    raise BackendError(f"the planeai daemon did not come up within {timeout:.0f}s; "
                       f"see {paths.log}")


def stop_daemon(paths: DaemonPaths, *, timeout: float = 15.0) -> int | None:
    """Ask the daemon to stop every session and exit; its pid, or None if none ran."""
    try:
        c = DaemonClient(paths.socket)
    except DaemonNotRunning:
        pid = daemon_pid(paths)
        if pid and pid > 0:
            # holds the lock but does not answer: wedged; end it
            _kill_wait(pid, timeout)
        return pid
    pid = int(c.hello["pid"])  # type: ignore[index]
    try:
        c.request("shutdown", timeout=timeout)
    except BackendError:
        pass  # it may close before the answer leaves
    finally:
        c.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and daemon_pid(paths) is not None:
        time.sleep(0.02)
    if daemon_pid(paths) is not None:
        _kill_wait(pid, timeout)
    return pid


def _kill_wait(pid: int, timeout: float) -> None:
    import signal

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout / 2
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)
