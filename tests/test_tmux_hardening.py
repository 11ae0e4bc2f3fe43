"""Issue 10, tmux side: process ownership of a session, literal strings, a server that
survives concurrent planeai commands, agents that die with their session, one tmux server per
PLANEAI_HOME, and no secrets in the server's global environment."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_repo, retry_until, run_subprocess
from planeai.backends.base import SpawnSpec
from planeai.backends.procs import kill_session_processes, session_processes
from planeai.backends.tmux import TmuxBackend, default_socket


def _alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def _read_pids(path: Path, n: int) -> list[int]:
    def ready():
        try:
            lines = path.read_text().split()
        except OSError:
            return None
        return [int(x) for x in lines] if len(lines) >= n else None

    return retry_until(ready, message=f"{n} pids in {path}")


# ---------------------------------------------------------------------------------- procs


def _setsid_tree(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    """A session leader with a stubborn child (ignores HUP and TERM), a normal child and a
    grandchild in a process group of its own."""
    pids = tmp_path / "pids"
    script = (
        f'echo $$ >> {pids}; '
        f'sh -c \'trap "" HUP TERM; echo $$ >> {pids}; while :; do sleep 1; done\' & '
        f'sleep 1000 & echo $! >> {pids}; '
        f'setsid -f sh -c "exit 0"; '  # leaves the session: must not be counted
        f'python3 -c "import os, time; os.setpgid(0, 0); '
        f'open(\'{pids}\', \'a\').write(str(os.getpid()) + \'\\n\'); time.sleep(1000)" & '
        'wait'
    )
    proc = subprocess.Popen(["setsid", "sh", "-c", script], stdin=subprocess.DEVNULL)
    return proc, _read_pids(pids, 4)


def test_session_processes_finds_the_whole_session(tmp_path: Path) -> None:
    proc, pids = _setsid_tree(tmp_path)
    try:
        leader = pids[0]
        found = retry_until(lambda: set(pids) <= set(session_processes(leader)) and
                            set(session_processes(leader)), message="the session's processes")
        assert leader in found
        assert os.getpid() not in found
        assert session_processes(os.getpid()) == [] or os.getsid(0) == os.getpid()
        assert session_processes(1) == [] and session_processes(0) == []
    finally:
        kill_session_processes(pids[0], timeout=5)
        proc.wait(10)


def test_kill_session_processes_ends_stubborn_children(tmp_path: Path) -> None:
    proc, pids = _setsid_tree(tmp_path)
    leader = pids[0]
    assert all(_alive(p) for p in pids)
    t0 = time.monotonic()
    found = kill_session_processes(leader, timeout=2.0)
    took = time.monotonic() - t0
    proc.wait(10)
    assert found >= 4
    assert [p for p in pids if _alive(p)] == [], "a process of the killed session survived"
    assert session_processes(leader) == []
    assert took < 4.0, f"kill took {took:.1f}s with a 2s timeout"
    # nothing left to do, and the guard rails
    assert kill_session_processes(leader) == 0
    assert kill_session_processes(1) == 0 and kill_session_processes(0) == 0
    assert kill_session_processes(-5) == 0


# ---------------------------------------------------------------------------------- tmux

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
# cd: to $HOME, where the canary is looked for (a path would put '/' in a file name)
HOSTILE = "a #(cd;touch CANARY)#{pane_id}#S;$(cd;touch CANARY) `cd;touch CANARY` 'q'"


def _tmux_env(tmpdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    env.update(TMUX_TMPDIR=str(tmpdir), **extra)
    return env


def _tmux(socket: str, tmpdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True,
                          env=_tmux_env(tmpdir), timeout=30)


def _server_pid(socket: str, tmpdir: Path) -> int | None:
    r = _tmux(socket, tmpdir, "display-message", "-p", "#{pid}")
    return int(r.stdout) if r.returncode == 0 and r.stdout.strip().isdigit() else None


def _spec(name: str, argv: list[str], cwd: Path, env: dict[str, str]) -> SpawnSpec:
    return SpawnSpec(name, argv, str(cwd), env, cols=100, rows=30)


@pytest.fixture
def backend(private_tmux, tmp_path: Path):
    socket, tmpdir = private_tmux
    b = TmuxBackend(socket, env=_tmux_env(tmpdir), runtime_dir=tmp_path / "run")
    yield b
    b.kill_server()
    for f in (tmp_path / "run").glob("*/*.pid"):  # whatever a failed test left behind
        kill_session_processes(int(f.read_text() or 0), timeout=2)


@needs_tmux
def test_hostile_dirs_and_paste_reach_tmux_literally(private_tmux, tmp_path: Path) -> None:
    """A start directory, a runtime dir and pasted text full of tmux formats and shell syntax:
    the agent starts exactly there, on its terminal, and nothing is expanded or run."""
    socket, tmpdir = private_tmux
    (tmp_path / "h").mkdir()
    canary = tmp_path / "h" / "CANARY"
    hostile = HOSTILE
    work = tmp_path / f"repo {hostile}"
    work.mkdir()
    home = tmp_path / f"home {hostile}"
    out = tmp_path / "out"
    agent = ["sh", "-c", 'pwd > "$0.pwd"; [ -t 0 ] && echo tty > "$0.tty"; '
             'IFS= read -r line; printf %s "$line" > "$0.line"; exit 7', str(out)]
    env = _tmux_env(tmpdir, HOME=str(tmp_path / "h"), PLANEAI_HOME=str(home),
                    HOSTILE_VAR=hostile)
    b = TmuxBackend(socket, env=env, runtime_dir=home / "run")
    try:
        b.spawn(_spec("PLA-1", agent, work, env))
        retry_until(lambda: Path(f"{out}.tty").exists(), message="the agent on its terminal")
        assert Path(f"{out}.pwd").read_text().strip() == str(work)
        text = f"-b pasted {hostile} #[fg=red] ##{{session_name}} $HOME"
        b.paste("PLA-1", text + "\n")
        retry_until(lambda: Path(f"{out}.line").exists(), message="the pasted line")
        assert Path(f"{out}.line").read_text() == text
        info = retry_until(lambda: (i := b.info("PLA-1")) and not i.alive and i, message="exit")
        assert info.exit_code == 7
        shown = _tmux(socket, tmpdir, "show-environment", "-t", "=PLA-1", "HOSTILE_VAR").stdout
        assert shown.strip() == f"HOSTILE_VAR={hostile}"
    finally:
        b.kill_server()
    assert not canary.exists(), "a tmux format or shell ran text planeai handed to tmux"
    assert not list(tmp_path.glob("*%*")), "a #{pane_id} was expanded into a path"


@needs_tmux
@pytest.mark.parametrize("reset", ["env", "python"])
def test_ctrl_c_and_stdin_reach_a_background_agent(backend, tmp_path: Path, monkeypatch,
                                                    reset: str) -> None:
    """The wrapper runs the agent in the background; ^C must still end it (sh starts
    background jobs with SIGINT ignored) and it must still read the terminal."""
    import planeai.backends.tmux_wrapper as wrapper

    if reset == "python":
        monkeypatch.setattr(wrapper, "reset_signals",
                            lambda: (sys.executable, "-S", "-c", wrapper.PY_RESET))
    b = backend
    b.spawn(_spec("PLA-1", ["sleep", "1000"], tmp_path, b.env))
    retry_until(lambda: [p for p in session_processes(b.info("PLA-1").pid)
                         if Path(f"/proc/{p}/comm").read_text().strip() == "sleep"],
                message="sleep running")
    b.send_keys("PLA-1", "C-c")
    info = retry_until(lambda: (i := b.info("PLA-1")) and not i.alive and i, message="^C ended it")
    assert info.exit_code == 130
    # an interactive shell as the agent: ^C interrupts its foreground job, not the shell
    b.spawn(_spec("PLA-2", ["sh", "-i"], tmp_path, {**b.env, "PS1": "$ "}))
    b.write("PLA-2", b"sleep 1000\r")
    retry_until(lambda: any(Path(f"/proc/{p}/comm").read_text().strip() == "sleep"
                            for p in session_processes(b.info("PLA-2").pid)), message="sleep")
    b.send_keys("PLA-2", "C-c")
    b.write("PLA-2", b"echo after-$((6*7))\r")
    retry_until(lambda: "after-42" in "\n".join(b.snapshot("PLA-2").lines), message="after ^C")
    b.write("PLA-2", b"exit 5\r")
    info = retry_until(lambda: (i := b.info("PLA-2")) and not i.alive and i, message="exit 5")
    assert info.exit_code == 5


def _agents(tmp_path: Path, b: TmuxBackend) -> dict[str, int]:
    """A normal agent and a stubborn one (ignores HUP and TERM, and leaves a grandchild in a
    process group of its own that ignores them too). Returns name -> agent pid."""
    pids = {}
    for name, script in (
        ("PLA-1", 'echo $$ > "$0"; exec sleep 1000'),
        ("PLA-2", 'trap "" HUP TERM; echo $$ > "$0"; '
                  'python3 -c "import os, signal, time; os.setpgid(0, 0); '
                  '[signal.signal(s, signal.SIG_IGN) for s in (1, 15)]; '
                  'open(\'$0.gc\', \'w\').write(str(os.getpid())); time.sleep(1000)" & '
                  'while :; do sleep 1; done'),
    ):
        f = tmp_path / f"{name}.pid"
        b.spawn(_spec(name, ["sh", "-c", script, str(f)], tmp_path, b.env))
        pids[name] = _read_pids(f, 1)[0]
    pids["PLA-2.gc"] = _read_pids(tmp_path / "PLA-2.pid.gc", 1)[0]
    return pids


@needs_tmux
@pytest.mark.parametrize("how", ["kill-server", "SIGKILL"])
def test_agents_die_with_their_tmux_server(backend, private_tmux, tmp_path: Path,
                                           how: str) -> None:
    socket, tmpdir = private_tmux
    b = backend
    pids = _agents(tmp_path, b)
    leaders = {n: b.info(n).pid for n in ("PLA-1", "PLA-2")}
    server = _server_pid(socket, tmpdir)
    if how == "kill-server":
        assert _tmux(socket, tmpdir, "kill-server").returncode == 0
    else:
        os.kill(server, signal.SIGKILL)
    retry_until(lambda: not _alive(server), message="the tmux server gone")
    # the hangup reaches the agent itself: nobody has to clean up after a normal one
    retry_until(lambda: not _alive(pids["PLA-1"]), message="the normal agent gone")
    retry_until(lambda: not _alive(leaders["PLA-1"]), message="its wrapper gone")
    assert _alive(pids["PLA-2"]), "the stubborn agent ignores the hangup"
    # a later planeai (a fresh backend, no tmux state) still reaches it through its pid file
    b.close()
    fresh = TmuxBackend(socket, env=b.env, runtime_dir=b.runtime_dir)
    try:
        fresh.forget("PLA-2")
        for p in (pids["PLA-2"], pids["PLA-2.gc"], leaders["PLA-2"]):
            assert not _alive(p), f"pid {p} of the forgotten session survived"
    finally:
        fresh.kill_server()


@needs_tmux
def test_kill_ends_the_whole_session(backend, tmp_path: Path) -> None:
    b = backend
    pids = _agents(tmp_path, b)
    leader = b.info("PLA-2").pid
    assert b.kill("PLA-1") == 129  # the forwarded hangup ended it, and the wrapper said so
    b.kill("PLA-2", timeout=2.0)
    for p in (pids["PLA-1"], pids["PLA-2"], pids["PLA-2.gc"], leader):
        assert not _alive(p), f"pid {p} survived kill()"
    assert session_processes(leader) == []


@needs_tmux
def test_subscribe_before_the_session_exists_then_again_streams(backend, tmp_path: Path):
    """The app can subscribe while a session is still being set up (its row is written
    before its worktree and process): that subscribe fails, and the next one must really
    watch again instead of believing a subscriber already does."""
    from planeai.errors import BackendError

    got: list[bytes] = []
    with pytest.raises(BackendError):
        backend.subscribe("PLA-7", lambda name, data: got.append(data))
    backend.spawn(_spec("PLA-7", ["sh", "-c", "read x; echo got-$x; sleep 60"], tmp_path,
                        backend.env))
    backend.subscribe("PLA-7", lambda name, data: got.append(data))
    backend.write("PLA-7", b"ping\r")
    retry_until(lambda: b"got-ping" in b"".join(got), message="streamed output")


@needs_tmux
def test_a_dropped_watcher_is_replaced_while_someone_subscribes(backend, private_tmux,
                                                                 tmp_path: Path):
    socket, tmpdir = private_tmux
    got: list[bytes] = []
    backend.spawn(_spec("PLA-8", ["sh", "-c", "while read x; do echo got-$x; done"], tmp_path,
                        backend.env))
    backend.subscribe("PLA-8", lambda name, data: got.append(data))
    clients = _tmux(socket, tmpdir, "list-clients", "-F", "#{client_name} #{session_name}")
    watcher = [ln.split()[0] for ln in clients.stdout.splitlines() if ln.endswith(" PLA-8")]
    assert len(watcher) == 1, clients.stdout
    _tmux(socket, tmpdir, "detach-client", "-t", watcher[0])  # tmux drops our watcher

    def answered():
        backend.write("PLA-8", b"ping\r")
        return b"got-ping" in b"".join(got)

    retry_until(answered, interval=0.2, message="output after the watcher was dropped")


@needs_tmux
def test_a_paused_pane_is_repainted_for_its_subscribers(backend, tmp_path: Path):
    """tmux pauses a pane for a client that fell 5 s behind and drops what it printed; when
    it continues, subscribers get the whole screen again instead of keeping a stale one."""
    got: list[bytes] = []
    backend.spawn(_spec("PLA-9", ["sh", "-c", "echo screen-line-$((6*7)); sleep 60"], tmp_path,
                        backend.env))
    retry_until(lambda: "screen-line-42" in backend.snapshot("PLA-9").text, message="output")
    backend.subscribe("PLA-9", lambda name, data: got.append(data))
    pane = backend.ctl().list_sessions()
    pane_id = [d["pane_id"] for d in pane if d["name"] == "PLA-9"][0]
    # what the control client reports once tmux lets the paused pane go on
    backend.ctl()._emit_event("continue", [pane_id, "PLA-9"])
    retry_until(lambda: b"screen-line-42" in b"".join(got), message="the repainted screen")


# ---------------------------------------------------------------------------------- CLI

SLEEPER = ('name = "sleeper"\nbinary = "sh"\n'
           'command = ["sh", "-c", "echo $$ > agent.pid; exec sleep 1000"]\n')


def _home(tmp_path: Path, label: str, tmpdir: Path, socket: str | None = None) -> dict:
    """A PLANEAI_HOME with a "sleeper" provider, a project "planeai" and one task (PLA-1);
    returns the environment for the CLI."""
    base = tmp_path / label
    home = base / "home"
    (home / "config" / "providers").mkdir(parents=True)
    (home / "config" / "providers" / "sleeper.toml").write_text(SLEEPER)
    if socket is not None:
        (home / "config" / "config.toml").write_text(f'[tmux]\nsocket = "{socket}"\n')
    env = _tmux_env(tmpdir, PLANEAI_HOME=str(home))
    repo = make_repo(base / "planeai")
    for args in (["project", "add", str(repo)], ["task", "add", "a task"]):
        r = run_subprocess(*args, cwd=repo, env=env)
        assert r.returncode == 0, r.stderr.decode()
    env["_REPO"] = str(repo)
    return env


def _start(env: dict) -> dict:
    r = run_subprocess("session", "start", "PLA-1", "--backend", "tmux", "--provider",
                       "sleeper", "--no-worktree", "--json", cwd=Path(env["_REPO"]), env=env)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def _agent_pid(env: dict) -> int:
    return _read_pids(Path(env["_REPO"]) / "agent.pid", 1)[0]


@needs_tmux
def test_six_parallel_cli_loops_do_not_crash_the_tmux_server(private_tmux, tmp_path: Path):
    """tmux 3.3a segfaulted when control clients of a destroy-unattached session came and
    went at once: six `session list` loops for 60 s, and the server and its agent live on."""
    socket, tmpdir = private_tmux
    env = _home(tmp_path, "one", tmpdir, socket=socket)
    _start(env)
    agent = _agent_pid(env)
    server = _server_pid(socket, tmpdir)
    assert server
    script = ("import subprocess, sys, time\n"
              "end = time.monotonic() + float(sys.argv[1]); n = 0\n"
              "while time.monotonic() < end:\n"
              "    r = subprocess.run([sys.executable, '-m', 'planeai.cli.main', 'session',"
              " 'list'], capture_output=True)\n"
              "    n += 1\n"
              "    if r.returncode: sys.exit(r.stderr.decode() or 'failed')\n"
              "print(n)\n")
    loops = [subprocess.Popen([sys.executable, "-c", script, "60"], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(6)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in loops]
    assert [r for r in results if r[0] != 0] == [], "a `session list` failed"
    assert _server_pid(socket, tmpdir) == server, "the tmux server died or was replaced"
    assert _alive(agent)
    r = run_subprocess("session", "list", "--json", env=env)
    (s,) = json.loads(r.stdout)
    assert s["name"] == "PLA-1" and s["state"] == "running"
    assert sum(int(r[1]) for r in results) >= 12, results  # the loops really ran


@needs_tmux
def test_two_homes_have_their_own_tmux_servers(private_tmux, tmp_path: Path):
    _, tmpdir = private_tmux
    a = _home(tmp_path, "a", tmpdir)
    b = _home(tmp_path, "b", tmpdir)
    sockets = {default_socket(a), default_socket(b)}
    try:
        assert _start(a)["name"] == _start(b)["name"] == "PLA-1"
        pid_a, pid_b = _agent_pid(a), _agent_pid(b)
        r = run_subprocess("session", "delete", "PLA-1", "--force", env=a)
        assert r.returncode == 0, r.stderr.decode()
        retry_until(lambda: not _alive(pid_a), message="home a's agent gone")
        assert _alive(pid_b), "deleting in one home killed the other home's agent"
        r = run_subprocess("session", "list", "--json", env=b)
        assert [s["state"] for s in json.loads(r.stdout)] == ["running"]
    finally:
        for s in sockets:
            for pid in [int(x) for x in _tmux(s, tmpdir, "list-panes", "-a", "-F",
                                              "#{pane_pid}").stdout.split()]:
                kill_session_processes(pid)
            _tmux(s, tmpdir, "kill-server")


def test_default_socket_rule(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert default_socket({}) == default_socket({"PLANEAI_HOME": ""}) == "planeai"
    one = default_socket({"PLANEAI_HOME": str(tmp_path / "real")})
    assert one == default_socket({"PLANEAI_HOME": str(tmp_path / "link")})
    assert one == default_socket({"PLANEAI_HOME": str(tmp_path / "real") + "/"})
    assert one != default_socket({"PLANEAI_HOME": str(tmp_path / "other")})
    assert one.startswith("planeai-") and len(one) == len("planeai-") + 10
    # the config's default ("") means "derive it"
    from planeai.config import load

    cfg = load(user_file=None, env={})
    assert cfg.tmux.socket == ""
    assert TmuxBackend(cfg.tmux.socket, env={"PLANEAI_HOME": str(tmp_path / "real")}
                       ).socket == one


@needs_tmux
def test_no_secrets_in_the_servers_global_environment(private_tmux, tmp_path: Path) -> None:
    socket, tmpdir = private_tmux
    keys = {"ANTHROPIC_API_KEY": "sk-ant-secret", "OPENAI_API_KEY": "sk-oa-secret",
            "GEMINI_API_KEY": "g-secret"}
    env = _tmux_env(tmpdir, **keys, LC_ALL="C.UTF-8", TZ="UTC")
    b = TmuxBackend(socket, env=env, runtime_dir=tmp_path / "run")
    try:
        # the session gets exactly the env it is given (the caller filters it)
        b.spawn(_spec("PLA-1", ["sleep", "1000"], tmp_path,
                      {"PATH": env["PATH"], "OPENAI_API_KEY": "sk-oa-secret"}))
        glob = _tmux(socket, tmpdir, "show-environment", "-g").stdout
        for k, v in keys.items():
            assert k not in glob and v not in glob, f"{k} leaked into the server"
        assert "LC_ALL=C.UTF-8" in glob.splitlines() and "TZ=UTC" in glob.splitlines()
        sess = _tmux(socket, tmpdir, "show-environment", "-t", "=PLA-1").stdout.splitlines()
        assert "OPENAI_API_KEY=sk-oa-secret" in sess
        assert not any(line.startswith(("ANTHROPIC_API_KEY=", "GEMINI_API_KEY="))
                       for line in sess)
    finally:
        b.kill_server()
