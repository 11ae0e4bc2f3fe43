"""`planeai task ...` run on a host reaches the board here (planeai.remote.relay), against a
real OpenSSH sshd on 127.0.0.1 whose second user stands in for another machine
(tests/support/sshd.py): the relay forwards a unix socket over the host's one SSH connection,
the `planeai` installed there (planeai/remote/planeai-remote.py) talks to it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from planeai import config
from planeai.paths import locations
from planeai.remote import relay
from planeai.remote.ssh import SshHost, control_dir
from planeai.services import hosts
from support.polling import retry_until

ROOT = Path(__file__).resolve().parent.parent
NO_BOARD = ("planeai: error: no connection to the planeai board (is the user's planeai "
            "reachable over SSH?)")


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "planeai", *args], env=env,
                          capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def ok(*args: str) -> str:
    r = cli(*args)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout


def board() -> dict[str, dict]:
    """The local board: key -> task, as `planeai task list --json` shows it."""
    return {t["key"]: t for t in json.loads(ok("task", "list", "--all-projects", "--json"))}


@dataclass
class Remote:
    host: config.HostSettings
    conn: SshHost
    root: str
    client: str         # ROOT/bin/planeai there
    socket: str         # the relay's socket there
    token: str
    parent: str         # the session's task

    def planeai(self, *args: str, token: str | None = None, sock: str | None = None):
        """`planeai ARGS` run on the host by its user, as an agent of the session would."""
        env = [f"PLANEAI_RELAY_SOCKET={self.socket if sock is None else sock}",
               f"PLANEAI_RELAY_TOKEN={self.token if token is None else token}"]
        return self.conn.run(["env", *env, self.client, *args], timeout=150)


@pytest.fixture
def remote(sshd, repo):
    """A project and a task here, a session of that task registered on host `box`, its relay
    running and the client installed there; all stopped and removed at teardown."""
    ok("host", "add", "box", sshd.target, "--port", str(sshd.port),
       "--ssh-config", str(sshd.client_config))
    ok("project", "add", str(repo), "--key", "PLA")
    parent = ok("task", "add", "the session's task", "--project", "PLA").split()[0]
    locs = locations()
    host = config.load(user_file=locs.config_file, env={}).hosts["box"]
    conn = hosts.connection(host, locs)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    session_env = {"PLANEAI_SESSION_ID": "s-remote-1", "PLANEAI_TASK_KEY": parent,
                   "PLANEAI_PROJECT": "PLA", "PLANEAI_HOME": env["PLANEAI_HOME"],
                   "PATH": env["PATH"]}
    token = relay.register_session(locs, "box", "s-remote-1", session_env)
    try:
        sock = relay.ensure_relay(host, locs, env)
        root = conn.path(host.root)
        client = relay.install_client(conn, root)
        yield Remote(host, conn, root, client, sock, token, parent)
    finally:
        relay.unregister_session(locs, token)
        relay.stop_relay(locs, "box")
        conn.exit_master()
        for d in (control_dir(locs.runtime_dir), relay.socket_dir(locs.runtime_dir)):
            if d.parent == Path("/tmp"):
                d.rmdir()


def test_task_add_and_done_on_the_host_reach_the_local_board(remote):
    r = remote.planeai("task", "add", "found on the host", "--parent", remote.parent)
    assert r.rc == 0, (r.out, r.err)
    key = r.out.split()[0]
    tasks = board()
    assert tasks[key]["title"] == "found on the host"
    assert tasks[key]["parent"] == remote.parent

    r = remote.planeai("task", "done", key)
    assert r.rc == 0, (r.out, r.err)
    assert board()[key]["status"] == "done"
    # the session's own task (PLANEAI_TASK_KEY of the registered session): no KEY needed
    r = remote.planeai("task", "done")
    assert r.rc == 0, (r.out, r.err)
    assert board()[remote.parent]["status"] in ("in_review", "done")


def test_ten_adds_at_once_from_the_host_all_land_with_distinct_keys(remote):
    titles = [f"parallel {i}" for i in range(10)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(
            lambda t: remote.planeai("task", "add", t, "--parent", remote.parent), titles))
    assert all(r.rc == 0 for r in results), [(r.out, r.err) for r in results]
    keys = [r.out.split()[0] for r in results]
    assert len(set(keys)) == 10
    tasks = board()
    assert sorted(tasks[k]["title"] for k in keys) == sorted(titles)
    assert all(tasks[k]["parent"] == remote.parent for k in keys)


def test_unknown_sessions_and_other_commands_are_refused(remote):
    before = board()
    r = remote.planeai("task", "add", "from nobody", token="0" * 64)
    assert (r.rc, r.err) == (1, "planeai: error: this session is not known to planeai "
                                "(ended?)\n")
    r = remote.planeai("task", "add", "from nobody", token="not even hex; rm -rf /")
    assert r.rc == 1 and "not known to planeai" in r.err
    for argv in (["session", "list"], ["secret", "set", "x", "y"], ["config"], []):
        r = remote.planeai(*argv)
        assert r.rc == 2, (argv, r.out, r.err)
        assert r.err.startswith("planeai: error: on a remote host only the board's commands "
                                "are available (task ...)"), r.err
    # no socket there: one clear line
    r = remote.planeai("task", "list", sock=f"{remote.root}/run/nothing.sock")
    assert (r.rc, r.err.strip()) == (1, NO_BOARD)
    # a session that ended is not known any more
    relay.unregister_session(locations(), "s-remote-1")
    r = remote.planeai("task", "add", "after the end")
    assert r.rc == 1 and "not known to planeai (ended?)" in r.err
    assert board() == before


def _raw(path: str, data: bytes) -> dict:
    """One request straight to the relay's local socket (what the forward carries)."""
    import socket

    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(60)
        s.connect(path)
        try:
            s.sendall(data)
        except OSError:
            pass  # it stopped reading: the answer says why
        got = b""
        while not got.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    return json.loads(got)


def test_oversized_and_malformed_requests_are_refused(remote):
    local = relay.running(locations(), "box")["local"]
    assert os.stat(local).st_mode & 0o077 == 0
    big = json.dumps({"token": remote.token, "argv": ["task", "add", "x" * (1 << 20)]})
    assert _raw(local, big.encode() + b"\n") == {
        "rc": 1, "out": "", "err": "planeai: error: the command is over 1 MiB\n"}
    for bad in (b"not json\n", b'{"token": 1}\n', b'{"token": "a", "argv": "task list"}\n',
                b"\xff\n"):
        assert _raw(local, bad)["err"] == "planeai: error: the request is not understood\n"
    ok_answer = _raw(local, json.dumps({"token": remote.token,
                                        "argv": ["task", "list"]}).encode() + b"\n")
    assert ok_answer["rc"] == 0 and "the session's task" in ok_answer["out"]


def test_a_dropped_connection_heals_by_itself(remote):
    assert remote.planeai("task", "list").rc == 0
    master = relay._master_pid(remote.conn)
    os.kill(master, signal.SIGKILL)  # the network goes: the master dies without a word
    retry_until(lambda: relay._master_pid(remote.conn) not in (None, master),
                message="the relay to log in again")

    def works():
        r = remote.planeai("task", "add", "after the drop", "--parent", remote.parent)
        return r if r.rc == 0 else None

    r = retry_until(works, message="a request over the new connection")
    assert board()[r.out.split()[0]]["title"] == "after the drop"


def test_hostile_titles_land_verbatim_and_run_nothing(remote, canary):
    titles = [f"it's \"here\" $(touch {canary}) `touch {canary}`; touch {canary}",
              f"#(touch {canary}) #{{pane_id}} $HOME \\n a  b",
              f"--parent {remote.parent}"]
    for title in titles:
        r = remote.planeai("task", "add", title, "--parent", remote.parent)
        assert r.rc == 0, (r.out, r.err)
        assert board()[r.out.split()[0]]["title"] == title
    assert remote.conn.run(["test", "-e", str(canary)]).rc != 0  # nor there


def test_ensure_relay_is_cheap_once_running_and_stop_leaves_no_socket(remote, monkeypatch):
    locs = locations()
    state = relay.running(locs, "box")
    assert state and state["remote"] == remote.socket == f"{remote.root}/run/relay.sock"

    def no_process(*a, **kw):
        raise AssertionError("ensure_relay started a process although the relay runs")

    with monkeypatch.context() as m:  # no ssh (nor any process) when it runs
        m.setattr(relay.subprocess, "Popen", no_process)
        m.setattr(relay.subprocess, "run", no_process)
        assert relay.ensure_relay(remote.host, locs) == remote.socket
    # a second relay for the same host does not start: the lock holds it off
    r = subprocess.run([sys.executable, "-m", "planeai.remote.relay", "box"],
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                       timeout=60)
    assert r.returncode == 0 and relay.running(locs, "box")["pid"] == state["pid"]

    assert relay.stop_relay(locs, "box")
    assert not relay._is_relay(state["pid"])
    assert relay.running(locs, "box") is None
    assert not Path(state["local"]).exists()
    assert remote.conn.run(["test", "-e", remote.socket]).rc != 0
    r = remote.planeai("task", "list")
    assert (r.rc, r.err.strip()) == (1, NO_BOARD)
    assert relay.stop_relay(locs, "box") is False


def test_install_client_writes_only_a_changed_client(remote):
    inode = ["stat", "-c", "%i %a", remote.client]
    first = remote.conn.run(inode, check=True).out
    assert first.split()[1] == "755"
    assert relay.install_client(remote.conn, remote.root) == remote.client
    assert remote.conn.run(inode, check=True).out == first  # same content: not written
    remote.conn.run(["sh", "-c", 'echo "# changed" >> "$1"', "sh", remote.client], check=True)
    relay.install_client(remote.conn, remote.root)
    assert remote.conn.run(inode, check=True).out != first
    assert remote.conn.run(["cat", remote.client], check=True).out == relay.CLIENT.read_text()


def test_a_root_with_a_colon_is_refused_in_one_line(sshd, repo):
    ok("host", "add", "colon", sshd.target, "--port", str(sshd.port),
       "--ssh-config", str(sshd.client_config), "--root", "~/a:b")
    locs = locations()
    host = config.load(user_file=locs.config_file, env={}).hosts["colon"]
    try:
        with pytest.raises(relay.RelayError) as e:
            relay.ensure_relay(host, locs, {**os.environ, "PYTHONPATH": str(ROOT)})
        assert "holds ':'" in str(e.value) and "\n" not in str(e.value)
        assert relay.running(locs, "colon") is None
    finally:
        hosts.connection(host, locs).exit_master()
        for d in (control_dir(locs.runtime_dir), relay.socket_dir(locs.runtime_dir)):
            if d.parent == Path("/tmp"):
                d.rmdir()


def _cleanup_host(name: str) -> None:
    locs = locations()
    host = config.load(user_file=locs.config_file, env={}).hosts[name]
    relay.stop_relay(locs, name)
    hosts.connection(host, locs).exit_master()
    for d in (control_dir(locs.runtime_dir), relay.socket_dir(locs.runtime_dir)):
        if d.parent == Path("/tmp") and d.exists():
            d.rmdir()


@pytest.mark.parametrize("long", [False, True], ids=["short", "long"])
def test_a_hostile_root_path_reaches_nothing_as_code(sshd, repo, canary, long):
    # a socket path is at most ~100 bytes: a long root puts it in a private dir in /tmp there
    c = f"/tmp/{canary.name[:12]}"
    root = (f"~/it's a \"root\" $(touch {canary}) `touch {canary}` #(touch {canary}) ;x"
            if long else f"~/'\" $(touch {c})#(touch {c})`x`;")
    ok("host", "add", "odd", sshd.target, "--port", str(sshd.port),
       "--ssh-config", str(sshd.client_config), "--root", root)
    ok("project", "add", str(repo), "--key", "PLA")
    locs = locations()
    host = config.load(user_file=locs.config_file, env={}).hosts["odd"]
    conn = hosts.connection(host, locs)
    token = relay.register_session(locs, "odd", "s-odd", {"PLANEAI_PROJECT": "PLA"})
    try:
        sock = relay.ensure_relay(host, locs, {**os.environ, "PYTHONPATH": str(ROOT)})
        full = conn.path(root)
        assert sock == (f"{full}/run/relay.sock" if not long else
                        relay.remote_run_dir(host.ssh, full) + "/relay.sock")
        assert long == sock.startswith("/tmp/planeai-relay-"), sock
        client = relay.install_client(conn, full)
        r = conn.run(["env", f"PLANEAI_RELAY_SOCKET={sock}", f"PLANEAI_RELAY_TOKEN={token}",
                      client, "task", "add", "through an odd root"])
        assert r.rc == 0, (r.out, r.err)
        assert board()[r.out.split()[0]]["title"] == "through an odd root"
        for path in (canary, c):
            assert conn.run(["test", "-e", str(path)]).rc != 0
            assert not Path(path).exists()
    finally:
        relay.unregister_session(locs, token)
        conn.run(["rm", "-rf", conn.path(root)])
        _cleanup_host("odd")


def test_the_relay_exits_by_itself_once_its_sessions_are_gone(sshd):
    ok("host", "add", "box", sshd.target, "--port", str(sshd.port),
       "--ssh-config", str(sshd.client_config))
    locs = locations()
    host = config.load(user_file=locs.config_file, env={}).hosts["box"]
    token = relay.register_session(locs, "box", "s-1", {})
    other = relay.register_session(locs, "other-host", "s-2", {})  # not this relay's
    try:
        relay.ensure_relay(host, locs, {**os.environ, "PYTHONPATH": str(ROOT)}, idle_exit=1)
        pid = relay.running(locs, "box")["pid"]
        assert relay.unregister_session(locs, "s-1") == 1
        retry_until(lambda: not relay._is_relay(pid), message="the idle relay to exit")
        assert relay.running(locs, "box") is None
        assert not relay.local_socket(locs, "box").exists()
        assert relay.unregister_session(locs, token) == 0
    finally:
        relay.unregister_session(locs, other)
        _cleanup_host("box")


def test_an_unreachable_host_is_one_line(sshd):
    with socket_closed_port() as port:
        ok("host", "add", "gone", sshd.target, "--port", str(port),
           "--ssh-config", str(sshd.client_config))
        locs = locations()
        host = config.load(user_file=locs.config_file, env={}).hosts["gone"]
        try:
            with pytest.raises(relay.RelayError) as e:
                relay.ensure_relay(host, locs, {**os.environ, "PYTHONPATH": str(ROOT)})
            msg = str(e.value)
            assert "did not start" in msg and "unreachable" in msg and "\n" not in msg
            assert relay.running(locs, "gone") is None
        finally:
            _cleanup_host("gone")


class socket_closed_port:
    """A port on 127.0.0.1 that nothing listens on (bound, not listening, while in use)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.sock.close()
