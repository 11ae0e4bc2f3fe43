"""The board for agents on other hosts: `planeai task ...` run there reaches this machine.

One relay process per host and PLANEAI_HOME (``python -m planeai.remote.relay HOST``, started
detached by :func:`ensure_relay`, one at a time by an flock) listens on a local unix socket and
has the host's shared SSH master connection forward ``ROOT/run/relay.sock`` there to it
(``ssh -O forward -R``): no daemon of planeai's on the host, no port, no second login. The
``planeai`` installed there (planeai-remote.py, :func:`install_client`) sends one JSON line
``{"token", "argv"}`` and gets one back ``{"rc", "out", "err"}``.

The token names a session (:func:`register_session`, a 0600 file here named by its sha256):
each request runs as this machine's own ``python -m planeai`` with that session's environment
(PLANEAI_SESSION_ID, PLANEAI_TASK_KEY, ...), through the same function as the sandbox inbox
(planeai.sandbox.inbox.answer): the same code, the same store transactions and so the same
concurrency guarantees as a call from a local session. Only ``task ...`` is served.

A dropped connection heals by itself: every few seconds the relay asks ssh whether the master
still runs (a local call, no network); when it died or was replaced, the relay logs in again
and forwards again. With no session of the host registered for IDLE_EXIT seconds it exits.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from planeai.errors import PlaneaiError
from planeai.paths import Locations, ensure_private_dir, locations
from planeai.remote import ssh
from planeai.remote.ssh import SshHost, one_line
from planeai.sandbox.inbox import answer

CLIENT = Path(__file__).resolve().parent / "planeai-remote.py"
REQUEST_MAX = 1024 * 1024
READ_TIMEOUT = 30.0         # a client has this long to send its request line
CHECK_EVERY = 2.5           # seconds between looks at the master connection
IDLE_EXIT = 600.0           # exit after this long with no registered session of the host
START_TIMEOUT = 60.0        # ensure_relay waits this long for the relay to forward
CONCURRENT = 16             # requests answered at once (more wait their turn)
# the session's own variables: a relay started from inside a session must not lend them out
SESSION_VARS = ("PLANEAI_SESSION_ID", "PLANEAI_TASK_KEY", "PLANEAI_PROJECT", "PLANEAI_WORKTREE",
                "PLANEAI_FROM_SANDBOX", "PLANEAI_RELAY_SOCKET", "PLANEAI_RELAY_TOKEN")
UNKNOWN = "planeai: error: this session is not known to planeai (ended?)\n"


class RelayError(PlaneaiError):
    """The relay could not start or forward."""


# ---- files


def relay_dir(locs: Locations) -> Path:
    return ensure_private_dir(Path(locs.runtime_dir) / "relay")


def _tokens_dir(locs: Locations) -> Path:
    return ensure_private_dir(relay_dir(locs) / "tokens")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def socket_dir(runtime_dir: Path) -> Path:
    """Where the relays' local sockets live: <runtime>/relay, or a short private dir in /tmp
    when that path is too long for a socket (or holds ':' or '\\', which ``-R`` parses)."""
    try:
        return ssh.socket_dir(runtime_dir, "relay", longest="/0123456789ab.sock", avoid=":\\")
    except PlaneaiError as e:
        raise RelayError(str(e)) from None


def local_socket(locs: Locations, host_name: str) -> Path:
    name = hashlib.sha256(host_name.encode()).hexdigest()[:12]
    return socket_dir(locs.runtime_dir) / f"{name}.sock"


def _state_file(locs: Locations, host_name: str) -> Path:
    return relay_dir(locs) / f"{host_name}.json"


def _write_private(path: Path, data: dict) -> None:
    """``data`` as JSON in a 0600 file, renamed into place whole."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_relay(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"planeai.remote.relay" in f.read()
    except FileNotFoundError:
        return not os.path.isdir("/proc")  # no /proc (macOS): a live pid will do
    except OSError:
        return False


def running(locs: Locations, host_name: str) -> dict | None:
    """The running relay's state ({pid, remote, local}) or None. Files and /proc only."""
    state = _read_json(_state_file(locs, host_name))
    if not state or not isinstance(state.get("pid"), int) or not state.get("remote"):
        return None
    return state if _is_relay(state["pid"]) else None


# ---- sessions


def register_session(locs: Locations, host_name: str, session_id: str, env: dict[str, str],
                     cwd: str | None = None) -> str:
    """A new token for a session on ``host_name``: requests with it run with ``env``
    (PLANEAI_SESSION_ID, PLANEAI_TASK_KEY, PLANEAI_PROJECT, ...) in ``cwd`` (default /).
    Only its sha256 is kept here, in a 0600 file."""
    token = secrets.token_hex(32)
    _write_private(_tokens_dir(locs) / _digest(token),
                   {"host": host_name, "session_id": session_id,
                    "env": {str(k): str(v) for k, v in env.items()}, "cwd": cwd or "/"})
    return token


def unregister_session(locs: Locations, token_or_session_id: str) -> int:
    """Forget a session's token (given the token, or the session id: all its tokens).
    Returns how many were forgotten."""
    d = _tokens_dir(locs)
    gone = 0
    try:
        (d / _digest(token_or_session_id)).unlink()
        gone += 1
    except FileNotFoundError:
        pass
    for entry in os.scandir(d):
        if entry.name.startswith("."):
            continue
        data = _read_json(Path(entry.path))
        if data and data.get("session_id") == token_or_session_id:
            Path(entry.path).unlink(missing_ok=True)
            gone += 1
    return gone


def _session(locs: Locations, token: str) -> dict | None:
    if not isinstance(token, str) or not re.fullmatch(r"[0-9a-f]{64}", token):
        return None
    return _read_json(_tokens_dir(locs) / _digest(token))


def _host_has_sessions(locs: Locations, host_name: str) -> bool:
    for entry in os.scandir(_tokens_dir(locs)):
        if not entry.name.startswith("."):
            data = _read_json(Path(entry.path))
            if data and data.get("host") == host_name:
                return True
    return False


# ---- starting and stopping


def ensure_relay(host, locs: Locations, env: dict[str, str] | None = None, *,
                 idle_exit: float = IDLE_EXIT) -> str:
    """The path of the host's relay socket there, starting the relay when none runs (files
    only, no ssh call, when one does). ``host`` is a HostSettings; ``env`` the environment
    the relay runs with (PLANEAI_HOME, PLANEAI_CONFIG naming the same config); it exits
    ``idle_exit`` s after the host's last session was unregistered. RelayError (one line)
    when it cannot forward."""
    state = running(locs, host.name)
    if state:
        return state["remote"]
    env = {k: v for k, v in (os.environ if env is None else env).items()
           if k not in SESSION_VARS}
    deadline = time.monotonic() + START_TIMEOUT
    proc: subprocess.Popen | None = None
    err = None
    try:
        while True:
            state = running(locs, host.name)
            if state:
                if proc is not None:  # reap it when it ends (no zombie in a long-lived caller)
                    threading.Thread(target=proc.wait, daemon=True).start()
                return state["remote"]
            rc = proc.poll() if proc else 0
            if rc:
                err.seek(0)
                said = one_line(err.read().decode("utf-8", "replace"))
                raise RelayError(f"the relay for host {host.name} did not start: "
                                 f"{said.removeprefix('planeai: error: ') or f'exit {rc}'}")
            # none yet, or ours found the lock taken: start one when nobody holds it
            if rc == 0 and _lock_free(locs, host.name):
                if err is not None:
                    err.close()
                err = tempfile.TemporaryFile()
                proc = subprocess.Popen(
                    [sys.executable, "-m", "planeai.remote.relay", host.name,
                     "--idle-exit", f"{idle_exit:g}"], env=env,
                    cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                    start_new_session=True)
            if time.monotonic() > deadline:
                raise RelayError(f"the relay for host {host.name} did not start in "
                                 f"{START_TIMEOUT:g} s")
            time.sleep(0.02)
    finally:
        if err is not None:
            err.close()


def _lock_free(locs: Locations, host_name: str) -> bool:
    fd = os.open(relay_dir(locs) / f"{host_name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # and with it the lock


def stop_relay(locs: Locations, host_name: str, timeout: float = 15.0) -> bool:
    """Stop the host's relay (it takes its forward back and removes its sockets); True when
    one ran."""
    state = _read_json(_state_file(locs, host_name))
    pid = state.get("pid") if state else None
    if not isinstance(pid, int) or not _is_relay(pid):
        _state_file(locs, host_name).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _is_relay(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            local_socket(locs, host_name).unlink(missing_ok=True)
            _state_file(locs, host_name).unlink(missing_ok=True)
            break
        time.sleep(0.02)
    return True


# ---- the client on the host


def install_client(conn: SshHost, root: str) -> str:
    """Install the host's ``planeai`` (planeai-remote.py) as ROOT/bin/planeai, mode 0755;
    nothing is written when the same content is there (its sha256 is compared there). One
    ssh call; the file travels on stdin. ``root`` is an absolute path there."""
    path = f"{root.rstrip('/')}/bin/planeai"
    content = CLIENT.read_text(encoding="utf-8")
    digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
    script = ('mkdir -p "${1%/*}" || exit 1; '
              'have=$({ sha256sum "$1" 2>/dev/null || shasum -a 256 "$1" 2>/dev/null; } '
              '| cut -c1-64); '
              'if [ -f "$1" ] && [ "$have" = "$2" ]; then cat >/dev/null; exit 0; fi; '
              'cat > "$1.tmp" && chmod 755 "$1.tmp" && mv "$1.tmp" "$1"')
    conn.run(["sh", "-c", script, "sh", path, digest], input=content, check=True)
    return path


# ---- the relay process


def _is_master(pid: int, conn: SshHost) -> bool:
    """Is ``pid`` still the ssh master of ``conn``'s socket? (/proc: no process started)"""
    try:
        comm = Path(f"/proc/{pid}/comm").read_bytes().strip()
        title = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    # a master retitles itself "ssh: <ControlPath> [mux]"
    return comm == b"ssh" and str(conn.control_path).encode() in title


def _master_pid(conn: SshHost) -> int | None:
    """The pid of the host's master ssh (``ssh -O check``, local), or None when none runs."""
    return conn.master_pid()


_PREPARE = ('umask 077 && mkdir -p "$1" && [ -d "$1" ] && [ ! -L "$1" ] && [ -O "$1" ] || '
            '{ echo "$1 is not a directory of this user\'s" >&2; exit 1; }; '
            'chmod 700 "$1" && rm -f "$2"')
REMOTE_SOCKET_MAX = 100  # sun_path there: 108 bytes on Linux, 104 on the BSDs and macOS


def remote_run_dir(target: str, root: str) -> str:
    """Where the relay's socket lives there: ROOT/run, or a private dir in /tmp when a long
    root would make the socket's path too long for a unix socket."""
    run_dir = f"{root.rstrip('/')}/run"
    if len(run_dir.encode()) + len("/relay.sock") <= REMOTE_SOCKET_MAX:
        return run_dir
    digest = hashlib.sha256(f"{target}\0{root}".encode()).hexdigest()[:12]
    return f"/tmp/planeai-relay-{digest}"


class Relay:
    """The relay of one host: its local socket, the forward there, a thread per request."""

    def __init__(self, host, locs: Locations, conn: SshHost, *,
                 idle_exit: float = IDLE_EXIT) -> None:
        self.host, self.locs, self.conn = host, locs, conn
        self.idle_exit = idle_exit
        self.local = local_socket(locs, host.name)
        self.remote = ""
        self.stop = threading.Event()
        self.master: int | None = None
        self.slots = threading.BoundedSemaphore(CONCURRENT)
        self.base_env = {k: v for k, v in os.environ.items() if k not in SESSION_VARS}
        self.log_path = relay_dir(locs) / f"{host.name}.log"

    def log(self, text: str) -> None:
        try:
            if self.log_path.exists() and self.log_path.stat().st_size > 256 * 1024:
                self.log_path.unlink()
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}\n")
        except OSError:
            pass

    # -- forwarding

    def _root(self) -> str:
        root = self.conn.path(self.host.root).rstrip("/") or "/"
        if ":" in root or "\\" in root:  # ssh -R splits on ':' and unescapes '\'
            raise RelayError(f"host {self.host.name}: root {root!r} holds ':' or '\\', which "
                             "ssh's socket forwarding cannot take; set another root")
        return root

    def forward(self) -> None:
        """(Re)forward ROOT/run/relay.sock there to our socket over the current master."""
        self.conn.connect()
        run_dir = remote_run_dir(self.conn.target, self._root())
        remote = f"{run_dir}/relay.sock"
        # a dir of this user's, 0700 (in /tmp it could be someone else's trap); sshd does not
        # unlink a socket file a dead connection left: remove it first
        self.conn.run(["sh", "-c", _PREPARE, "sh", run_dir, remote], check=True, timeout=30)
        self.conn.forward_socket(remote, str(self.local))
        self.master = _master_pid(self.conn)
        self.remote = remote

    def watch(self) -> None:
        """Every CHECK_EVERY s: heal a dead or replaced master; exit when idle."""
        idle_since = time.monotonic()
        while not self.stop.wait(CHECK_EVERY):
            try:
                if _host_has_sessions(self.locs, self.host.name):
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > self.idle_exit:
                    self.log("no session of this host for a while: exiting")
                    self.stop.set()
                    return
                if self.master and _is_master(self.master, self.conn):
                    continue  # the same master lives (a new one cannot bind its socket)
                pid = _master_pid(self.conn)
                if (pid is None or pid != self.master) and not self.stop.is_set():
                    self.log(f"connection {'gone' if pid is None else 'replaced'}: "
                             "forwarding again")
                    self.forward()
                    self.log("forwarding again: done")
            except (PlaneaiError, OSError, subprocess.SubprocessError) as e:
                self.log(f"cannot forward yet: {e}")

    # -- serving

    def serve(self, client: socket.socket) -> None:
        with client:
            try:
                client.settimeout(READ_TIMEOUT)
                data = b""
                while not data.endswith(b"\n") and len(data) <= REQUEST_MAX:
                    chunk = client.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                with self.slots:
                    rc, out, err = self.answer(data)
                client.settimeout(READ_TIMEOUT)
                client.sendall(json.dumps({"rc": rc, "out": out, "err": err}).encode() + b"\n")
            except OSError:
                pass  # the client went away

    def answer(self, data: bytes) -> tuple[int, str, str]:
        if len(data) > REQUEST_MAX:
            return 1, "", "planeai: error: the command is over 1 MiB\n"
        try:
            req = json.loads(data.decode("utf-8"))
            token, argv = req["token"], req["argv"]
            if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return 1, "", "planeai: error: the request is not understood\n"
        session = _session(self.locs, token)
        if not session or session.get("host") != self.host.name:
            return 1, "", UNKNOWN
        env = {**self.base_env, **session.get("env", {})}
        return answer(argv, env, session.get("cwd") or "/", where="on a remote host")

    def run(self) -> None:
        self.local.unlink(missing_ok=True)  # we hold the lock: a socket there is stale
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            old = os.umask(0o177)
            try:
                listener.bind(str(self.local))
            finally:
                os.umask(old)
            listener.listen(64)
            listener.settimeout(0.5)
            self.forward()
            _write_private(_state_file(self.locs, self.host.name),
                           {"pid": os.getpid(), "remote": self.remote,
                            "local": str(self.local), "host": self.host.name})
            self.log(f"forwarding {self.remote} -> {self.local}")
            threading.Thread(target=self.watch, name="relay-watch", daemon=True).start()
            while not self.stop.is_set():
                try:
                    client, _ = listener.accept()
                except socket.timeout:
                    continue
                except OSError:
                    if self.stop.is_set():
                        break
                    raise
                threading.Thread(target=self.serve, args=(client,), daemon=True).start()
        finally:
            listener.close()
            self.close()

    def close(self) -> None:
        _state_file(self.locs, self.host.name).unlink(missing_ok=True)
        self.local.unlink(missing_ok=True)
        if self.remote and _master_pid(self.conn) is not None:
            try:  # take the forward back and leave no socket file there
                self.conn.forward_socket(self.remote, str(self.local), cancel=True)
                self.conn.run(["sh", "-c", 'rm -f "$1"; case "$2" in /tmp/planeai-relay-*) '
                               'rmdir "$2";; esac', "sh", self.remote,
                               self.remote.rsplit("/", 1)[0]], timeout=10)
            except (PlaneaiError, OSError, subprocess.SubprocessError):
                pass


def main(argv: list[str] | None = None) -> int:
    from planeai import config as config_mod
    from planeai.services import hosts

    import argparse

    parser = argparse.ArgumentParser(prog="python -m planeai.remote.relay")
    parser.add_argument("host")
    parser.add_argument("--idle-exit", type=float, default=IDLE_EXIT, metavar="SECONDS")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    name = args.host
    locs = locations()
    fd = os.open(relay_dir(locs) / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return 0  # one runs already
    try:
        cfg = config_mod.load(user_file=locs.config_file, env=os.environ)
        host = hosts.get(cfg, name)
        relay = Relay(host, locs, hosts.connection(host, locs), idle_exit=args.idle_exit)

        def stop(*_):
            relay.stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, stop)
        relay.run()
        return 0
    except PlaneaiError as e:
        print(f"planeai: error: {e}", file=sys.stderr)
        return 1
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
