"""The daemon backend end to end: a real daemon process, real PTYs, real shells.

Every test gets its own PLANEAI_HOME in a short /tmp dir (AF_UNIX paths are limited) and its
daemon is stopped (then killed if need be) when the test ends.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import ptyprocess
import pytest

from conftest import planeai_cmd, retry_until

from planeai import config as config_mod
from planeai.backends.base import SpawnSpec
from planeai.backends.daemon.backend import DaemonBackend
from planeai.core.models import SessionState
from planeai.backends.daemon import DaemonPaths
from planeai.backends.daemon import protocol as P
from planeai.backends.daemon.attach import parse_key
from planeai.backends.daemon.client import (DaemonClient, daemon_pid, start_daemon,
                                           stop_daemon)
from planeai.errors import BackendError, ConfigError
from planeai.paths import locations
from planeai.services import tasks as task_svc
from planeai.services.context import open_store
from planeai.services.projects import add_project
from planeai.services.sessions import SessionManager
from planeai.terminal.screen import TerminalScreen

SHELL_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm-256color",
             "PS1": "$ ", "HOME": "/tmp", "LANG": "C.UTF-8"}


def _cleanup(paths: DaemonPaths) -> None:
    try:
        stop_daemon(paths, timeout=10)
    finally:
        pid = daemon_pid(paths)
        if pid and pid > 0:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def dpaths(monkeypatch) -> DaemonPaths:
    root = Path(tempfile.mkdtemp(prefix="pd-", dir="/tmp"))
    monkeypatch.setenv("PLANEAI_HOME", str(root))
    paths = DaemonPaths(root / "run", root / "state")
    yield paths
    _cleanup(paths)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def backend(dpaths):
    b = DaemonBackend(paths=dpaths)
    yield b
    b.close()


def shell(b: DaemonBackend, name: str, cols: int = 100, rows: int = 30, argv=None):
    return b.spawn(SpawnSpec(name, argv or ["bash", "--norc", "--noprofile", "-i"], "/tmp",
                             dict(SHELL_ENV), cols, rows))


def screen_text(b: DaemonBackend, name: str) -> str:
    return "".join(b.snapshot(name).lines)


def run_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(planeai_cmd() + list(args), capture_output=True, text=True,
                          timeout=60, env=os.environ.copy(), **kw)


def raw_socket(paths: DaemonPaths) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(paths.socket))
    return s


def closed_by_daemon(s: socket.socket) -> bool:
    """Read until EOF; True when the daemon closed the connection (a timeout fails)."""
    while True:
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            return True
        if not data:
            return True


# ---------------------------------------------------------------------- protocol units
def test_frames_split_anywhere_and_limits_are_checked_on_the_header():
    frames = (P.encode_control({"id": 1, "op": "hello", "version": 1})
              + P.encode_data(P.OUTPUT, "PLA-1", b"\x1b[31mred\x00\xff"))
    r = P.FrameReader()
    got = []
    for i in range(len(frames)):
        got += r.feed(frames[i:i + 1])
    assert got[0] == (P.CONTROL, b'{"id":1,"op":"hello","version":1}')
    assert P.decode_data(got[1][1]) == ("PLA-1", b"\x1b[31mred\x00\xff")
    with pytest.raises(P.ProtocolError, match="over the"):
        P.FrameReader().feed(P.HEADER.pack(100 * 1024 * 1024, P.CONTROL))
    with pytest.raises(P.ProtocolError, match="unknown frame type"):
        P.FrameReader().feed(b"\x00\x00\x00\x01\x09x")
    with pytest.raises(P.ProtocolError, match="not JSON"):
        P.decode_control(b"\xff{")


def test_detach_keys():
    assert parse_key("C-q") == b"\x11" and parse_key("^Q") == b"\x11"
    assert parse_key("C-]") == b"\x1d" and parse_key("c-a") == b"\x01"
    for bad in ("q", "C-", "M-q", "C-1"):
        with pytest.raises(ValueError):
            parse_key(bad)


def test_deep_home_gets_a_short_private_socket(tmp_path):
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    paths = DaemonPaths(deep / "run", deep / "state")
    assert len(str(paths.socket)) <= 100 and str(paths.socket).startswith("/tmp/planeai-")
    try:
        start_daemon(paths)
        c = DaemonClient(paths.socket)
        assert c.request("list") == []
        c.close()
        assert oct(os.stat(paths.socket.parent).st_mode & 0o777) == "0o700"
    finally:
        _cleanup(paths)
    assert not paths.socket.exists()


# ---------------------------------------------------------------------- lifecycle
def test_start_status_lock_and_stop(dpaths):
    r = run_cli("daemon", "status")
    assert r.returncode == 3 and "not running" in r.stdout
    r = run_cli("daemon", "start")
    assert r.returncode == 0, r.stderr
    pid = int(re.search(r"pid (\d+)", r.stdout).group(1))
    assert daemon_pid(dpaths) == pid
    # detached: its own session, no controlling terminal, not our child
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ppid, session, tty_nr = int(stat[1]), int(stat[3]), int(stat[4])
    assert tty_nr == 0 and session != os.getsid(0) and ppid != os.getpid()
    assert oct(os.stat(dpaths.socket).st_mode & 0o777) == "0o600"
    assert oct(os.stat(dpaths.runtime_dir).st_mode & 0o777) == "0o700"
    assert "serving on" in dpaths.log.read_text()
    # a second start finds it; a second daemon cannot take the lock
    r = run_cli("daemon", "start")
    assert r.returncode == 0 and f"already running (pid {pid})" in r.stdout
    second = subprocess.run([sys.executable, "-m", "planeai.backends.daemon", "--runtime-dir",
                             str(dpaths.runtime_dir), "--state-dir", str(dpaths.state_dir)],
                            capture_output=True, timeout=30)
    assert second.returncode == 3
    assert daemon_pid(dpaths) == pid
    c = DaemonClient(dpaths.socket)
    assert c.hello["pid"] == pid  # the first one still answers on the same socket
    c.close()
    r = run_cli("daemon", "status")
    assert r.returncode == 0 and f"pid {pid}" in r.stdout and "no sessions" in r.stdout
    r = run_cli("daemon", "restart")
    assert r.returncode == 0, r.stderr
    new_pid = daemon_pid(dpaths)
    assert new_pid and new_pid != pid
    r = run_cli("daemon", "stop")
    assert r.returncode == 0 and f"stopped (pid {new_pid})" in r.stdout
    assert daemon_pid(dpaths) is None and not dpaths.socket.exists()
    assert run_cli("daemon", "status").returncode == 3


def test_concurrent_starts_give_one_daemon(dpaths):
    procs = [subprocess.Popen(planeai_cmd() + ["daemon", "start"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outs
    pids = {int(re.search(r"pid (\d+)", out).group(1)) for out, _ in outs}
    assert pids == {daemon_pid(dpaths)}
    daemons = [d for d in os.listdir("/proc") if d.isdigit() and _is_daemon_of(int(d), dpaths)]
    assert len(daemons) == 1


def _is_daemon_of(pid: int, paths: DaemonPaths) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return (b"planeai.backends.daemon" in cmd and str(paths.runtime_dir).encode() in cmd
            and _running(pid))


def test_stop_asks_before_ending_sessions(dpaths, backend):
    info = shell(backend, "PLA-1")
    r = run_cli("daemon", "stop", stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "1 running session (PLA-1)" in r.stderr
    assert "--force" in r.stderr
    assert backend.info("PLA-1").alive
    r = run_cli("daemon", "status")
    assert "PLA-1" in r.stdout and "running" in r.stdout
    r = run_cli("daemon", "stop", "--force", stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert daemon_pid(dpaths) is None
    retry_until(lambda: not _running(info.pid), message="the agent ended with the daemon")


def test_stop_in_a_terminal_asks_first(dpaths, backend):
    shell(backend, "PLA-1")
    for answer, code in ((b"n", 1), (b"y", 0)):
        term = Term(planeai_cmd() + ["daemon", "stop"])
        retry_until(lambda: "Stop? [y/N]" in term.text(), message="the question")
        assert "1 running session (PLA-1)" in term.text()
        term.proc.write(answer + b"\r")
        assert term.wait() == code
        if code:
            assert "not stopped" in term.text() and backend.info("PLA-1").alive
    assert "daemon stopped" in term.text()
    assert daemon_pid(dpaths) is None


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


# ---------------------------------------------------------------------- must show
CLIENT_SCRIPT = r"""
import os, signal, sys
from planeai.backends.base import SpawnSpec
from planeai.backends.daemon.backend import DaemonBackend
from planeai.backends.daemon import DaemonPaths
runtime, state, flag = sys.argv[1:4]
b = DaemonBackend(paths=DaemonPaths(__import__("pathlib").Path(runtime),
                                    __import__("pathlib").Path(state)))
for n in ("PLA-1", "PLA-2"):
    script = ('echo before-%s; while [ ! -e %s ]; do sleep 0.02; done; echo after-%s; '
              'touch %s.%s; exec cat') % (n, flag, n, flag, n)
    b.spawn(SpawnSpec(n, ["sh", "-c", script], "/tmp", {"PATH": os.environ["PATH"]}, 80, 24))
    b.subscribe(n, lambda name, data: None)
print("READY", flush=True)
signal.pause()
"""


def test_sessions_survive_a_sigkilled_client(dpaths, tmp_path):
    flag = tmp_path / "go"
    client = subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT, str(dpaths.runtime_dir),
                               str(dpaths.state_dir), str(flag)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert client.stdout.readline().strip() == "READY"
    finally:
        client.kill()  # SIGKILL: no goodbye, no cleanup
        client.wait()
    # no client is attached now; the agents carry on and print
    flag.touch()
    retry_until(lambda: all(Path(f"{flag}.{n}").exists() for n in ("PLA-1", "PLA-2")),
                message="both agents printed while detached")
    b = DaemonBackend(paths=dpaths, autostart=False)
    try:
        assert {i.name: i.alive for i in b.list()} == {"PLA-1": True, "PLA-2": True}
        for n in ("PLA-1", "PLA-2"):
            retry_until(lambda n=n: f"after-{n}" in screen_text(b, n), message=f"{n} screen")
            lines = b.snapshot(n).lines
            assert lines[0] == f"before-{n}" and lines[1] == f"after-{n}"
            assert b.snapshot(n).alive
        r = run_cli("daemon", "status")
        assert "PLA-1" in r.stdout and "PLA-2" in r.stdout
    finally:
        b.close()


AGENT = r"""
import sys
out = sys.stdout.buffer
n = 0
for phase in (1, 2):
    sys.stdin.readline()
    for _ in range(%d):
        out.write(b"line %%07d the agent reads files and edits code in its own worktree\n" %% n)
        n += 1
    out.write(b"PHASE-%%d-DONE\n" %% phase)
    out.flush()
sys.stdin.readline()
"""


def test_twenty_clients_see_the_same_output_and_a_stalled_one_is_dropped(dpaths):
    """Queues are bounded at 4 MiB per client. Each phase writes ~3 MB, so a reading client
    can never be that far behind, while one that stopped reading falls 6 MB behind."""
    per_phase = 40000
    start_daemon(dpaths, extra_args=["--client-buffer", str(4 << 20)])
    b = DaemonBackend(paths=dpaths)
    clients, streams = [], []
    stalled = None

    def received(marker: bytes):
        return lambda: all(marker in bytes(buf[-300:]) for buf in streams)

    try:
        b.spawn(SpawnSpec("PLA-1", [sys.executable, "-c", AGENT % per_phase], "/tmp",
                          dict(SHELL_ENV), 120, 40))
        for i in range(20):
            buf = bytearray()
            c = DaemonClient(dpaths.socket, on_output=lambda name, data, buf=buf: buf.extend(data))
            c.request("subscribe", name="PLA-1")
            clients.append(c)
            streams.append(buf)
        # one more client subscribes and then never reads again
        stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(str(dpaths.socket))
        stalled.sendall(P.encode_control({"id": 1, "op": "hello", "version": P.VERSION})
                        + P.encode_control({"id": 2, "op": "subscribe", "name": "PLA-1"}))
        retry_until(lambda: b.status()["clients"] == 22, message="22 clients connected")
        for phase in (1, 2):
            b.write("PLA-1", b"go\r")
            marker = f"PHASE-{phase}-DONE"
            # the agent is never held back by the stalled client: it writes everything
            retry_until(lambda: marker in screen_text(b, "PLA-1"), timeout=60,
                        message=f"the agent finished phase {phase}")
            retry_until(received(marker.encode()), timeout=60,
                        message=f"every reading client got phase {phase}")
        first = bytes(streams[0])
        assert all(bytes(s) == first for s in streams[1:])
        numbers = [int(m) for m in re.findall(r"^line (\d{7}) ", first.decode(), re.M)]
        assert numbers == list(range(2 * per_phase))
        st = b.status()
        assert st["dropped"] == 1 and st["clients"] == 21
        assert closed_by_daemon(stalled)
        assert all(not c.closed for c in clients)
        assert "too slow" in dpaths.log.read_text()
        b.write("PLA-1", b"\r")
        retry_until(lambda: b.info("PLA-1").exit_code == 0, message="the agent exits 0")
    finally:
        for c in clients:
            c.close()
        if stalled is not None:
            stalled.close()
        b.close()


def _daemon_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_garbage_huge_frames_and_bad_requests_close_only_that_client(dpaths, backend):
    shell(backend, "PLA-1")
    backend.write("PLA-1", b"echo alive-$((40+2))\r")
    retry_until(lambda: "alive-42" in screen_text(backend, "PLA-1").split("echo")[-1],
                message="the session works")
    pid = daemon_pid(dpaths)
    bad_inputs = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",                      # garbage: a 1.2 GB header
        os.urandom(64) + b"\x00" * 8,
        P.HEADER.pack(100 * 1024 * 1024, P.CONTROL) + b"{" * 65536,  # a 100 MB frame
        P.HEADER.pack(5, 9) + b"hello",                               # unknown frame type
        P.HEADER.pack(3, P.CONTROL) + b"{{{",                         # not JSON
        P.encode_control({"id": 1, "op": "list"}),                    # no hello first
        P.encode_data(P.OUTPUT, "PLA-1", b"spoof"),                   # clients may not send output
    ]
    for data in bad_inputs:
        s = raw_socket(dpaths)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert closed_by_daemon(s), data[:20]
        s.close()
        # the daemon carries on, the session is untouched, a good client is served
        c = DaemonClient(dpaths.socket)
        assert c.hello["pid"] == pid and [x["name"] for x in c.request("list")] == ["PLA-1"]
        c.close()
    assert _daemon_rss_kb(pid) < 100 * 1024  # the 100 MB frame was never buffered
    # a wrong protocol version is told why, then closed
    s = raw_socket(dpaths)
    s.sendall(P.encode_control({"id": 1, "op": "hello", "version": 99}))
    reply = P.FrameReader().feed(s.recv(65536))
    assert "version 99 is not supported" in P.decode_control(reply[0][1])["error"]
    assert closed_by_daemon(s)
    s.close()
    # an unknown request or a bad argument is an error answer, not a disconnect
    c = DaemonClient(dpaths.socket)
    with pytest.raises(BackendError, match="unknown request 'explode'"):
        c.request("explode")
    with pytest.raises(BackendError, match="no daemon session 'PLA-9'"):
        c.request("snapshot", name="PLA-9")
    with pytest.raises(BackendError, match="bad resize request"):
        c.request("resize", name="PLA-1", cols="wide", rows=2)
    assert c.request("info", name="PLA-1")["alive"]
    c.close()
    backend.write("PLA-1", b"echo still-$((40+3))\r")
    retry_until(lambda: "still-43" in screen_text(backend, "PLA-1").split("echo")[-1],
                message="the session still works")
    assert backend.status()["dropped"] >= len(bad_inputs)


def _connect_as_nobody(path: str) -> str:
    """Fork; the child drops to uid nobody, connects and reports what happened."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no pytest machinery from here on
        try:
            os.close(r)
            os.setgid(65534)
            os.setuid(65534)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            try:
                s.connect(path)
            except PermissionError:
                os.write(w, b"EACCES")
                os._exit(0)
            data = b""
            while True:  # the daemon speaks first here: its refusal, then EOF
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                data += chunk
            try:
                s.sendall(P.encode_control({"id": 1, "op": "hello", "version": P.VERSION})
                          + P.encode_control({"id": 2, "op": "list"}))
                data += s.recv(65536)
            except OSError:
                pass
            frames = P.FrameReader().feed(data)
            msgs = [P.decode_control(p) for _, p in frames]
            os.write(w, ("CLOSED " + repr(msgs)).encode())
        except BaseException as e:  # noqa: BLE001
            os.write(w, f"ERROR {e!r}".encode())
        os._exit(0)
    os.close(w)
    out = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        out += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return out.decode()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another uid")
def test_another_uid_is_refused(dpaths, backend):
    shell(backend, "PLA-1")
    # the socket's permissions already keep other users out
    assert _connect_as_nobody(str(dpaths.socket)) == "EACCES"
    # and with the file system opened up, the peer-credential check refuses them
    home = dpaths.runtime_dir.parent
    for d in (home, dpaths.runtime_dir):
        os.chmod(d, 0o711)
    os.chmod(dpaths.socket, 0o666)
    try:
        got = _connect_as_nobody(str(dpaths.socket))
    finally:
        os.chmod(dpaths.socket, 0o600)
        for d in (home, dpaths.runtime_dir):
            os.chmod(d, 0o700)
    assert got.startswith("CLOSED"), got
    assert "permission denied: uid 65534" in got
    assert "PLA-1" not in got  # nothing was answered
    st = backend.status()
    assert st["rejected"] == 1 and [s["name"] for s in st["sessions"]] == ["PLA-1"]
    assert "refused connection" in dpaths.log.read_text()


# ---------------------------------------------------------------------- sessions on the daemon
@pytest.fixture
def project(dpaths, repo):
    with open_store() as s:
        p, _ = add_project(s, repo)
    return p


def _task(title="Fix the parser") -> str:
    with open_store() as s:
        p = s.list_projects()[0]
        return task_svc.add_task(s, p, title).key


def _manager(daemon_config: dict | None = None, **extra_env) -> SessionManager:
    locs = locations()
    cfg = config_mod.load(user_file=None, env={})
    cfg.data["daemon"].update(daemon_config or {})
    # HOME inside PLANEAI_HOME: no user rc files in the agents' shells
    env = {**os.environ, "SHELL": "/bin/bash", "PS1": "$ ",
           "HOME": os.environ["PLANEAI_HOME"], **extra_env}
    return SessionManager(open_store(locs), cfg, locs, env=env)


def test_session_manager_flow_on_the_daemon(project):
    key = _task()
    m = _manager()
    try:
        s = m.start(task_key=key, agent="shell", backend="daemon")  # starts the daemon on demand
        assert s.state is SessionState.RUNNING and s.backend == "daemon"
        m.send(key, "echo hi")
        retry_until(lambda: any(ln.strip() == "hi" for ln in m.observe(key).snapshot.lines),
                    message="'hi' on the screen")
        assert any(ln.strip() == "hi" for ln in m.logs(key))
        cmd = m.attach_command(key)
        assert cmd[1:3] == ["-m", "planeai.backends.daemon.attach"] and cmd[-1] == key
    finally:
        m.close()  # the client goes away; the session does not
    m = _manager()
    try:
        assert m.reconcile() == []
        view = m.observe(key)
        assert view.session.state is SessionState.RUNNING
        assert any(ln.strip() == "hi" for ln in view.snapshot.lines)
        stopped = m.stop(key)
        assert stopped.state is SessionState.EXITED and stopped.exit_code is not None
        restarted = m.restart(key)
        assert restarted.state is SessionState.RUNNING and restarted.exit_code is None
        m.send(key, "exit 3")
        retry_until(lambda: m.observe(key).session.exit_code == 3, message="exit code 3")
        kinds = [e.kind for e in m.store.events(task_key=key)]
        for k in ("session.started", "session.stopped", "session.restarted", "session.exited"):
            assert k in kinds
    finally:
        m.close()


def test_daemon_killed_sessions_are_marked_exited_on_reconcile(project, dpaths):
    keys = [_task("one"), _task("two")]
    m = _manager()
    try:
        pids = [m.start(task_key=k, agent="shell", backend="daemon").pid for k in keys]
    finally:
        m.close()
    pid = daemon_pid(dpaths)
    os.kill(pid, signal.SIGKILL)  # a crash: no cleanup at all
    retry_until(lambda: daemon_pid(dpaths) is None, message="the daemon's lock released")
    for p in pids:  # the agents lose their terminal and end; none is left orphaned
        retry_until(lambda p=p: not _running(p), message=f"agent {p} ended")
    m = _manager()
    try:
        changed = m.reconcile()
        assert sorted(s.name for s in changed) == sorted(keys)
        for k in keys:
            s = m.get(k)
            assert s.state is SessionState.EXITED
            lost = [e for e in m.store.events(task_key=k) if e.kind == "session.lost"]
            assert len(lost) == 1 and "daemon" in lost[0].data["reason"]
        assert daemon_pid(dpaths) is None  # reconciling did not start a daemon
        assert m.reconcile() == []
        assert dpaths.socket.exists()  # the crash left its socket file behind
        # restarting a session starts a fresh daemon over the stale socket
        again = m.restart(keys[0])
        assert again.state is SessionState.RUNNING and daemon_pid(dpaths) not in (None, pid)
        m.send(keys[0], "echo back-$((2*3))")
        retry_until(lambda: "back-6" in "".join(m.observe(keys[0]).snapshot.lines[1:]),
                    message="the restarted session works")
    finally:
        m.close()


def test_observe_without_a_daemon_marks_lost_and_starts_nothing(project, dpaths):
    key = _task()
    m = _manager()
    try:
        m.start(task_key=key, agent="shell", backend="daemon")
        stop_daemon(dpaths)
        assert daemon_pid(dpaths) is None
        view = m.observe(key)
        assert view.session.state is SessionState.EXITED
        assert [e.kind for e in m.store.events(task_key=key)][-1] == "session.lost"
        assert daemon_pid(dpaths) is None
        with pytest.raises(BackendError, match="daemon is not running"):
            m.backend("daemon").write(key, b"x")
    finally:
        m.close()


# ---------------------------------------------------------------------- attach
class Term:
    """The user's terminal: a PTY running the attach client, emulated."""

    def __init__(self, argv, cols=100, rows=30, env=None):
        self.proc = ptyprocess.PtyProcess.spawn(argv, dimensions=(rows, cols),
                                                env=env or os.environ.copy())
        self.screen = TerminalScreen(cols, rows)
        self.raw = bytearray()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while True:
            try:
                data = self.proc.read(65536)
            except EOFError:
                return
            with self.lock:
                self.raw += data
                self.screen.feed(data)

    def text(self) -> str:
        with self.lock:
            return "\n".join(self.screen.text_lines())

    def resize(self, cols, rows):
        with self.lock:
            self.screen.resize(cols, rows)
        self.proc.setwinsize(rows, cols)

    def wait(self) -> int:
        retry_until(lambda: not self.proc.isalive(), message="the program in the terminal exits")
        self.thread.join(10)
        return self.proc.exitstatus


def test_attach_shows_the_screen_types_resizes_and_detaches(dpaths, backend):
    shell(backend, "PLA-1", cols=80, rows=24)
    backend.write("PLA-1", b"echo printed-$((6*7))-before\r")
    retry_until(lambda: "printed-42-before" in screen_text(backend, "PLA-1"),
                message="output before attach")
    term = Term(backend.attach_command("PLA-1"), cols=100, rows=30)
    try:
        # the current screen at once, and the session takes the terminal's size
        retry_until(lambda: "printed-42-before" in term.text(), message="screen on attach")
        retry_until(lambda: (backend.snapshot("PLA-1").cols, backend.snapshot("PLA-1").rows)
                    == (100, 30), message="session resized to the terminal")
        term.proc.write(b"echo typed-$((6*7))\r")
        retry_until(lambda: "typed-42" in term.text().split("echo typed")[-1],
                    message="typed keys reach the agent and its output comes back")
        assert "typed-42" in screen_text(backend, "PLA-1")
        term.resize(90, 35)  # SIGWINCH
        retry_until(lambda: (backend.snapshot("PLA-1").cols, backend.snapshot("PLA-1").rows)
                    == (90, 35), message="resize follows the terminal")
        term.proc.write(b"\x11")  # Ctrl-Q
        assert term.wait() == 0
        assert b"[detached from PLA-1]" in term.raw
        assert b"\x1b[?1049l" in term.raw  # the user's screen is given back
    finally:
        if term.proc.isalive():
            term.proc.kill(signal.SIGKILL)
    assert backend.info("PLA-1").alive  # detaching leaves the agent running
    assert "\x11" not in screen_text(backend, "PLA-1")


def test_attach_with_configured_key_and_agent_exit(dpaths):
    b = DaemonBackend(paths=dpaths, detach_key="C-]")
    try:
        shell(b, "PLA-2")
        cmd = b.attach_command("PLA-2")
        assert cmd[cmd.index("--detach-key") + 1] == "C-]"
        term = Term(cmd)
        retry_until(lambda: "$" in term.text(), message="prompt on attach")
        term.proc.write(b"\x11exit 7\r")  # Ctrl-Q is an ordinary key now
        assert term.wait() == 0
        assert b"[PLA-2 exited with code 7]" in term.raw
        assert b.info("PLA-2").exit_code == 7
        # attaching to an exited session shows its last screen and says so
        term = Term(cmd)
        assert term.wait() == 0
        assert b"[PLA-2 has exited with code 7]" in term.raw
        # and a missing one is a one-line error
        term = Term(cmd[:-1] + ["PLA-404"])
        assert term.wait() == 1
        assert b"no daemon session 'PLA-404'" in term.raw
    finally:
        b.close()


def test_paste_uses_bracketed_mode_and_input_to_exited_session_fails(dpaths, backend):
    script = ("import sys,tty;sys.stdout.write('\\x1b[?2004hREADY\\n');sys.stdout.flush();"
              "tty.setraw(0);d=b''\n"
              "while not d.endswith(b'\\x1b[201~'): d+=__import__('os').read(0,1024)\n"
              "print(repr(d))")
    shell(backend, "PLA-3", argv=[sys.executable, "-c", script])
    retry_until(lambda: "READY" in screen_text(backend, "PLA-3"), message="agent ready")
    backend.paste("PLA-3", "multi\nline \x1b[201~ text")
    retry_until(lambda: not backend.info("PLA-3").alive, message="agent got the paste")
    text = screen_text(backend, "PLA-3")
    assert "\\x1b[200~multi\\nline  text\\x1b[201~" in text
    with pytest.raises(BackendError, match="has exited"):
        backend.write("PLA-3", b"x")
    # send_keys, kill with escalation, forget
    shell(backend, "PLA-4", argv=["sh", "-c", "trap '' HUP TERM; echo TRAPPED; exec sleep 60"])
    retry_until(lambda: "TRAPPED" in screen_text(backend, "PLA-4"), message="traps set")
    assert backend.kill("PLA-4", timeout=0.6) == 128 + signal.SIGKILL
    backend.forget("PLA-4")
    assert backend.info("PLA-4") is None
    with pytest.raises(BackendError, match="unknown key"):
        backend.send_keys("PLA-3", "Hyper")


def test_subscribe_callbacks_and_scrollback(dpaths, backend):
    got = bytearray()
    ended = threading.Event()

    def cb(name, data):
        if data:
            got.extend(data)
        else:
            ended.set()

    shell(backend, "PLA-5", argv=["sh", "-c", "read x; seq 1 300; exit 4"])
    unsub = backend.subscribe("PLA-5", cb)
    backend.write("PLA-5", b"\r")
    assert ended.wait(30)
    assert b"300" in got and backend.info("PLA-5").exit_code == 4
    unsub()
    lines = backend.scrollback("PLA-5")
    assert lines[-1] == "300" and "1" in lines[:5]
    snap = backend.snapshot("PLA-5")
    assert not snap.alive and snap.exit_code == 4
    assert base64.b64encode(snap.ansi)  # a replayable screen


def test_agents_get_default_signal_dispositions(dpaths, backend):
    """The daemon ignores SIGHUP and SIGPIPE; its agents must not inherit that (SIG_IGN
    survives exec): SIGHUP is how a session ends, SIGPIPE how `cmd | head` ends."""
    shell(backend, "PLA-6", argv=["sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status"])
    retry_until(lambda: not backend.info("PLA-6").alive, message="the probe ran")
    masks = dict(ln.split(":") for ln in backend.snapshot("PLA-6").lines if ln)
    ignored, blocked = int(masks["SigIgn"], 16), int(masks["SigBlk"], 16)
    for sig in (signal.SIGHUP, signal.SIGPIPE, signal.SIGTERM, signal.SIGINT):
        assert not ignored & (1 << (sig - 1)) and not blocked & (1 << (sig - 1)), sig


def test_daemon_settings_come_from_the_config(project, dpaths):
    """[daemon] detach_key reaches `planeai attach`; scrollback bounds what the daemon keeps."""
    m = _manager({"detach_key": "C-]", "scrollback": 50})
    try:
        key = _task()
        m.start(task_key=key, agent="shell", backend="daemon")  # starts the daemon with them
        cmd = m.attach_command(key)
        assert cmd[cmd.index("--detach-key") + 1] == "C-]"
        m.send(key, "seq 1 500")
        retry_until(lambda: "500" in m.logs(key), message="seq output")
        logs = m.logs(key)
        assert "1" not in logs and len(logs) <= 50 + 40
    finally:
        m.close()
    with pytest.raises(ConfigError, match="daemon.detach_key: detach key 'M-x' is not accepted"):
        _manager({"detach_key": "M-x"}).backend("daemon")


def test_cli_sessions_on_the_daemon_and_planeai_attach(project, dpaths):
    """Each command is its own short-lived process; the session lives in the daemon."""
    key = _task()
    env = {**os.environ, "SHELL": "/bin/bash", "PS1": "$ ", "HOME": str(dpaths.runtime_dir.parent)}

    def cli(*args):
        return subprocess.run(planeai_cmd() + list(args), capture_output=True, text=True,
                              timeout=60, env=env, cwd=project.path, stdin=subprocess.DEVNULL)

    r = cli("session", "start", key, "--provider", "shell", "--backend", "daemon")
    assert r.returncode == 0, r.stderr
    assert f"attach: planeai attach {key}" in r.stdout
    r = cli("session", "send", key, "echo from-cli-$((3*3))")
    assert r.returncode == 0, r.stderr
    retry_until(lambda: "from-cli-9" in cli("session", "logs", key).stdout.split("echo")[-1],
                message="output in the logs")
    r = cli("session", "list")
    assert key in r.stdout and "daemon" in r.stdout and "running" in r.stdout
    # `planeai attach KEY` in a terminal: reconcile, then exec the raw client
    term = Term(planeai_cmd() + ["attach", key], env={**env, "TERM": "xterm-256color"})
    try:
        retry_until(lambda: "from-cli-9" in term.text(), message="attached screen")
        term.proc.write(b"echo via-attach-$((5*5))\r")
        retry_until(lambda: "via-attach-25" in term.text().split("echo via")[-1],
                    message="typed through planeai attach")
        term.proc.write(b"\x11")
        assert term.wait() == 0
        assert b"[detached from " + key.encode() + b"]" in term.raw
    finally:
        if term.proc.isalive():
            term.proc.kill(signal.SIGKILL)
    r = cli("session", "stop", key)
    assert r.returncode == 0 and "stopped" in r.stdout
    r = cli("daemon", "status")
    assert r.returncode == 0 and "exited" in r.stdout


def test_subscribers_hear_the_end_when_the_daemon_dies(dpaths, backend):
    shell(backend, "PLA-7")
    ended = threading.Event()
    backend.subscribe("PLA-7", lambda name, data: data or ended.set())
    os.kill(daemon_pid(dpaths), signal.SIGKILL)
    assert ended.wait(30)
    assert not backend.running()
    with pytest.raises(BackendError, match="not running"):
        backend.snapshot("PLA-7")


# ---------------------------------------------------------------------- spawns that fail
def test_bad_spawns_are_refused_and_never_clone_the_daemon(dpaths, backend, tmp_path):
    """A size the PTY or the emulator refuses, or a missing directory, used to fail in the
    forked child before exec: that copy of the daemon went on serving its socket."""
    shell(backend, "PLA-1")
    pid = daemon_pid(dpaths)
    for cols, rows in ((100, 0), (70000, 30), (0, 0), (-1, 24), (80, 2001)):
        with pytest.raises(BackendError) as e:
            shell(backend, "BAD", cols=cols, rows=rows)
        assert str(e.value) == (f"terminal size {cols} columns x {rows} rows is not accepted; "
                                "columns and rows are 1..2000")
    gone = tmp_path / "gone"
    with pytest.raises(BackendError, match=f"directory {gone} does not exist"):
        backend.spawn(SpawnSpec("BAD", ["sh"], str(gone), dict(SHELL_ENV), 80, 24))

    daemons = [int(d) for d in os.listdir("/proc") if d.isdigit()
               and _is_daemon_of(int(d), dpaths)]
    assert daemons == [pid] and daemon_pid(dpaths) == pid
    # that one daemon still serves: the old session runs, a new one at the largest size starts
    shell(backend, "PLA-2", cols=2000, rows=2000)
    assert {i.name: i.alive for i in backend.list()} == {"PLA-1": True, "PLA-2": True}
    assert [int(d) for d in os.listdir("/proc") if d.isdigit()
            and _is_daemon_of(int(d), dpaths)] == [pid]


CHILD_FAILS = r"""
import os, sys
import ptyprocess.ptyprocess as pp
from planeai.backends.base import SpawnSpec
from planeai.backends.local import LocalBackend

log, parent, real = sys.argv[1], os.getpid(), pp._setwinsize

def fail_in_child(fd, rows, cols):  # a failure the checks before the fork cannot foresee
    if os.getpid() != parent:
        raise RuntimeError("injected failure in the child before exec")
    return real(fd, rows, cols)

pp._setwinsize = fail_in_child
b = LocalBackend()
try:
    b.spawn(SpawnSpec("X", ["sh", "-c", "echo agent-ran"], "/tmp",
                      {"PATH": os.environ["PATH"]}, 80, 24))
    code = b.wait("X", 30)
    seen = "".join(b.scrollback("X"))
    outcome = f"returned exit={code} screen={seen!r}"
except BaseException as e:
    outcome = f"raised {type(e).__name__}"
with open(log, "a") as f:  # by path: the child's stdout is its PTY
    f.write(f"{os.getpid()} {outcome}\n")
os._exit(0)
"""


def test_a_failure_in_the_forked_child_never_returns_into_planeai(tmp_path):
    log = tmp_path / "log"
    r = subprocess.run([sys.executable, "-c", CHILD_FAILS, str(log)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = log.read_text().splitlines()
    assert len(lines) == 1, lines  # only the parent came back from spawn
    assert lines[0].endswith("returned exit=127 screen='planeai: cannot start the session: "
                             "RuntimeError: injected failure in the child before exec'"), lines
