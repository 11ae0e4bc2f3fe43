"""The Docker sandbox against a real engine: what an agent inside can and cannot touch, its
limits, its secrets, and its container's life (stop, delete, a SIGKILLed supervisor).

The agent here is a plain `sh -c SCRIPT` provider on planeai's base image, started through
the CLI on the tmux backend, so every check runs the real path: session start, the
supervisor, `docker run`, the inbox. The real Claude Code CLI in its image is in
tests/test_sandbox_claude.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import retry_until, run_subprocess
from support.docker_sandbox import BASE_IMAGE, containers, engine_problem, ensure_image

_problem = engine_problem()
pytestmark = pytest.mark.skipif(_problem is not None, reason=_problem or "")


@pytest.fixture(scope="module", autouse=True)
def base_image():
    ensure_image("base", BASE_IMAGE)


def boxsh(planeai_home: Path, *, secrets: str = "", image: str = BASE_IMAGE) -> None:
    d = planeai_home / "config" / "providers"
    d.mkdir(parents=True, exist_ok=True)
    (d / "boxsh.toml").write_text(
        f'name = "boxsh"\ncommand = ["sh", "-c", "{{prompt}}"]\ndocker_image = "{image}"\n'
        + (f'secrets = [{secrets}]\n' if secrets else ""))


def cli(env, *args, ok=True, timeout=120):
    cp = run_subprocess(*args, env=env, timeout=timeout)
    if ok:
        assert cp.returncode == 0, cp.stderr.decode()
    return cp


def session(env, key):
    rows = json.loads(cli(env, "session", "list", "--json").stdout)
    return next(r for r in rows if r["name"] == key)


def setup(repo, planeai_home, tmux_cli_env, config="", **extra):
    boxsh(planeai_home, secrets=extra.pop("secrets", ""))
    env = tmux_cli_env(f'[defaults]\nbackend = "tmux"\n[sandbox]\nnetwork = "none"\n{config}',
                       **extra)
    cli(env, "project", "add", str(repo), "--name", "planeai", "--key", "PLA")
    cli(env, "task", "add", "Boxed work", "--project", "PLA")
    return env


def start(env, script, key="PLA-1"):
    cp = cli(env, "session", "start", key, "--provider", "boxsh", "--sandbox",
             "--prompt", script)
    assert b"(sandboxed)" in cp.stdout
    return cp


def wait_exited(env, key="PLA-1"):
    return retry_until(lambda: (s := session(env, key))["state"] == "exited" and s,
                       interval=0.2, message=f"{key} to exit")


def test_inside_only_the_worktree_is_writable_and_nothing_is_privileged(
        repo, planeai_home, tmux_cli_env, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    reached = []

    def accept():
        while not stop.is_set():
            try:
                reached.append(listener.accept())
            except OSError:
                pass

    stop = threading.Event()
    threading.Thread(target=accept, daemon=True).start()
    canary_dir = tmp_path / "host-only"
    canary_dir.mkdir()
    canary = canary_dir / "canary"
    git_dir = repo / ".git"
    env = setup(repo, planeai_home, tmux_cli_env)
    script = f"""set +e
echo ok > in-worktree.txt && echo wt-ok >> result
echo x > {canary} 2>/dev/null && echo host-write >> result
[ -e {planeai_home}/data/planeai.db ] && echo db-visible >> result
[ -e {Path.home()} ] && ls -A {Path.home()} | grep -q . && echo home-visible >> result
echo x >> {git_dir}/config 2>/dev/null && echo config-written >> result
touch {git_dir}/hooks/pre-commit 2>/dev/null && echo hooks-written >> result
[ -S /var/run/docker.sock ] && echo docker-sock >> result
grep -E '^(NoNewPrivs|CapEff|CapPrm|CapBnd):' /proc/1/status >> result
bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}' 2>/dev/null && echo net-reached >> result
git add in-worktree.txt && git commit -qm inside && echo committed >> result
planeai task add 'Found inside' --parent PLA-1 >> result 2>&1
planeai session list >> result 2>&1; echo "session-list-rc $?" >> result
"""
    start(env, script)
    s = wait_exited(env)
    stop.set()
    wt = Path(s["worktree"])
    result = (wt / "result").read_text()
    assert "wt-ok" in result and "committed" in result
    for bad in ("host-write", "db-visible", "home-visible", "config-written", "hooks-written",
                "docker-sock", "net-reached"):
        assert bad not in result, result
    assert not canary.exists() and reached == []
    status = dict(line.split(":\t") for line in result.splitlines() if ":\t" in line)
    assert status["NoNewPrivs"].strip() == "1"
    for cap in ("CapEff", "CapPrm", "CapBnd"):
        assert int(status[cap], 16) == 0, (cap, status[cap])
    # the commit is on the task's branch in the host repo, the file owned by the host user
    log = subprocess.run(["git", "-C", str(repo), "log", "--format=%s", s["branch"]],
                         capture_output=True, text=True, check=True).stdout
    assert log.splitlines()[0] == "inside"
    assert (wt / "in-worktree.txt").stat().st_uid == os.getuid()
    # the subtask reached the host's board through the inbox; other commands did not
    tasks = {t["key"]: t for t in json.loads(cli(env, "task", "list", "--json").stdout)}
    assert tasks["PLA-2"]["title"] == "Found inside" and tasks["PLA-2"]["parent"] == "PLA-1"
    assert "only the board's commands" in result and "session-list-rc 2" in result
    # the container went with its agent
    assert containers(f"planeai.session={s['id']}") == []


def test_memory_and_process_limits_stop_the_agent_not_the_host(repo, planeai_home,
                                                                tmux_cli_env):
    env = setup(repo, planeai_home, tmux_cli_env,
                config='memory = "192m"\npids = 64\ncpus = 0.5\n')
    script = """set +e
head -c 2000m /dev/zero | tail -n 1 > /dev/null; echo "alloc $?" > result
echo bombing > bomb-started
exec bash -c 'b() { while :; do b & done; }; b' 2>/dev/null
"""
    start(env, script)
    wt = Path(session(env, "PLA-1")["worktree"])
    retry_until(lambda: (wt / "bomb-started").exists(),
                interval=0.2, message="the fork bomb to start")
    # the 2 GB allocation was killed by the memory limit (SIGKILL: 137)
    assert (wt / "result").read_text().split() == ["alloc", "137"]
    sid = session(env, "PLA-1")["id"]
    name = containers(f"planeai.session={sid}")[0]

    def pids():
        cp = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.PIDs}}", name],
                            capture_output=True, text=True, timeout=60)
        return int(cp.stdout.strip() or 0)

    retry_until(lambda: pids() >= 32,
                interval=0.2, message="the bomb to fill its pids")
    assert pids() <= 64
    # the host carries on: the board answers and a host session starts and runs
    cli(env, "task", "add", "Still here", "--project", "PLA")
    cli(env, "session", "start", "PLA-2", "--provider", "boxsh", "--no-sandbox",
        "--prompt", "echo host-fine > host.txt")
    wt2 = retry_until(lambda: (p := session(env, "PLA-2")["worktree"]) and
                      (Path(p) / "host.txt").exists() and Path(p),
                interval=0.2, message="the host session")
    assert (wt2 / "host.txt").read_text() == "host-fine\n"
    # and stopping the boxed session removes its container, bomb and all
    cli(env, "session", "stop", "PLA-1")
    retry_until(lambda: containers(f"planeai.session={sid}") == [],
                interval=0.2, message="the container to be removed")


def test_a_secret_reaches_the_agent_and_nothing_else(repo, planeai_home, tmux_cli_env,
                                                      tmp_path, private_tmux):
    value = "sk-box-" + os.urandom(12).hex()
    env = setup(repo, planeai_home, tmux_cli_env, secrets='"BOX_TOKEN"',
                PYTHON_KEYRING_BACKEND="file_keyring.FileKeyring",
                PYTHONPATH=str(Path(__file__).parent / "support"),
                TEST_KEYRING_FILE=str(tmp_path / "keyring.json"))
    cp = run_subprocess("secret", "set", "boxsh", "BOX_TOKEN", "--stdin", env=env,
                        input=value.encode() + b"\n")
    assert cp.returncode == 0, cp.stderr
    start(env, "printenv BOX_TOKEN > token.txt; exec sleep 600")
    s = session(env, "PLA-1")
    wt = Path(s["worktree"])
    retry_until(lambda: (wt / "token.txt").exists() and (wt / "token.txt").read_text(),
                interval=0.2, message="the agent to see its secret")
    assert (wt / "token.txt").read_text().strip() == value
    name = containers(f"planeai.session={s['id']}")[0]
    secret = value.encode()
    ps = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, check=True).stdout
    assert secret not in ps
    inspect = subprocess.run(["docker", "inspect", name], capture_output=True,
                             check=True).stdout
    assert secret not in inspect
    tmux = ["tmux", "-L", private_tmux.socket]
    for args in (["show-environment", "-g"], ["show-environment", "-t", "=PLA-1"]):
        out = subprocess.run(tmux + args, capture_output=True, env=private_tmux.env()).stdout
        assert secret not in out
    assert secret not in cli(env, "session", "logs", "PLA-1").stdout
    assert secret not in cli(env, "events", "--json", "--limit", "10000").stdout
    for f in (planeai_home / "data").glob("planeai.db*"):
        assert secret not in f.read_bytes()
    for f in (planeai_home / "state").rglob("*"):
        if f.is_file():
            assert secret not in f.read_bytes(), f
    cli(env, "session", "delete", "PLA-1", "--force")
    retry_until(lambda: containers(f"planeai.session={s['id']}") == [],
                interval=0.2, message="delete to remove the container")


def test_a_killed_supervisor_leaves_a_container_that_reconcile_removes(
        repo, planeai_home, tmux_cli_env):
    env = setup(repo, planeai_home, tmux_cli_env)
    start(env, "echo up > up.txt; exec sleep 600")
    s = session(env, "PLA-1")
    retry_until(lambda: (Path(s["worktree"]) / "up.txt").exists(),
                interval=0.2, message="the agent to run")
    # a planeai started afresh finds the container by its labels
    status = json.loads(cli(env, "sandbox", "status", "--json").stdout)
    mine = [c for c in status["containers"] if c["session_id"] == s["id"]]
    assert [(c["session"], c["task"], c["state"]) for c in mine] == [("PLA-1", "PLA-1",
                                                                       "running")]
    # the supervisor dies without cleaning up (SIGKILL): its container is left running
    os.kill(s["pid"], signal.SIGKILL)
    assert containers(f"planeai.session={s['id']}") != []
    # the next reconcile (any planeai listing its sessions) sees the session gone and
    # removes what it left
    retry_until(lambda: session(env, "PLA-1")["state"] == "exited",
                interval=0.2, message="reconcile")
    retry_until(lambda: (session(env, "PLA-1"),
                         containers(f"planeai.session={s['id']}") == [])[1],
                interval=0.2, message="the orphaned container to be removed")
    # the worktree stays
    assert (Path(s["worktree"]) / "up.txt").exists()


def test_a_missing_image_is_one_clear_line_and_nothing_is_made(repo, planeai_home,
                                                               tmux_cli_env):
    env = setup(repo, planeai_home, tmux_cli_env)
    boxsh(planeai_home, image="planeai-nothing-here:latest")
    cp = cli(env, "session", "start", "PLA-1", "--provider", "boxsh", "--sandbox",
             "--prompt", "true", ok=False)
    err = cp.stderr.decode()
    assert cp.returncode == 1 and len(err.strip().splitlines()) == 1, err
    assert "planeai-nothing-here:latest" in err and "planeai sandbox build boxsh" in err
    assert "Traceback" not in err
    assert json.loads(cli(env, "session", "list", "--json").stdout) == []
    task = json.loads(cli(env, "task", "show", "PLA-1", "--json").stdout)
    assert task["status"] == "todo"
    assert not (planeai_home / "data" / "worktrees" / repo.name / "PLA-1").exists()


def test_config_decides_and_the_flag_beats_it(repo, planeai_home, tmux_cli_env):
    env = setup(repo, planeai_home, tmux_cli_env,
                config='enabled = true\n[sandbox.tasks]\n"PLA-2" = false\n')
    cli(env, "task", "add", "Unboxed", "--project", "PLA")
    a = cli(env, "session", "start", "PLA-1", "--provider", "boxsh", "--prompt",
            "exec sleep 600")
    b = cli(env, "session", "start", "PLA-2", "--provider", "boxsh", "--prompt",
            "exec sleep 600")
    assert b"(sandboxed)" in a.stdout and b"(sandboxed)" not in b.stdout
    assert (session(env, "PLA-1")["sandbox"], session(env, "PLA-2")["sandbox"]) == (True,
                                                                                   False)
    assert b"tmux (sandbox)" in cli(env, "session", "list").stdout
    cli(env, "task", "add", "Flag", "--project", "PLA")
    c = cli(env, "session", "start", "PLA-3", "--provider", "boxsh", "--no-sandbox",
            "--prompt", "exec sleep 600")
    assert b"(sandboxed)" not in c.stdout
    for k in ("PLA-1", "PLA-2", "PLA-3"):
        cli(env, "session", "stop", k)


@pytest.mark.parametrize("broken", ["no-engine", "no-docker"])
def test_no_engine_or_no_docker_is_one_line_that_says_how_to_fix_it(
        repo, planeai_home, tmux_cli_env, tmp_path, broken):
    env = setup(repo, planeai_home, tmux_cli_env)
    if broken == "no-engine":
        env["DOCKER_HOST"] = f"unix://{tmp_path}/no-such-docker.sock"
        want = "the Docker engine is not running"
    else:
        # a PATH with everything planeai's start needs except docker
        bindir = tmp_path / "bin"
        bindir.mkdir()
        for tool in ("git", "tmux", "sh"):
            os.symlink(subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True,
                                      text=True, check=True).stdout.strip(), bindir / tool)
        env["PATH"] = str(bindir)
        want = "docker is not installed"
    for args in (["session", "start", "PLA-1", "--provider", "boxsh", "--sandbox",
                  "--prompt", "true"], ["sandbox", "status"]):
        cp = cli(env, *args, ok=False)
        err = (cp.stderr or cp.stdout).decode()
        assert cp.returncode == 1, err
        assert want in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert json.loads(cli(env, "session", "list", "--json").stdout) == []


def test_a_hostile_repo_path_is_mounted_literally_and_runs_nothing(planeai_home, tmux_cli_env,
                                                                   tmp_path):
    from conftest import make_repo

    canary = Path("/tmp") / f"pwned-{os.urandom(4).hex()}"
    repo = make_repo(tmp_path / f'we,ird"=path $(touch {canary}) #(touch {canary})')
    env = setup(repo, planeai_home, tmux_cli_env)
    start(env, "echo inside > made.txt")
    s = wait_exited(env)
    assert (Path(s["worktree"]) / "made.txt").read_text() == "inside\n"
    assert not canary.exists()


def test_the_task_itself_can_say_sandboxed_or_not(repo, planeai_home, tmux_cli_env):
    env = setup(repo, planeai_home, tmux_cli_env, config="enabled = true\n")
    cli(env, "task", "add", "Always boxed", "--project", "PLA", "--sandbox")
    cli(env, "task", "edit", "PLA-1", "--no-sandbox")
    shown = json.loads(cli(env, "task", "show", "PLA-1", "--json").stdout)
    assert shown["sandbox"] is False
    a = cli(env, "session", "start", "PLA-1", "--provider", "boxsh", "--prompt", "true")
    b = cli(env, "session", "start", "PLA-2", "--provider", "boxsh", "--prompt", "true")
    assert b"(sandboxed)" not in a.stdout and b"(sandboxed)" in b.stdout
    cli(env, "task", "edit", "PLA-1", "--sandbox-as-configured")
    assert json.loads(cli(env, "task", "show", "PLA-1", "--json").stdout)["sandbox"] is None


def test_work_handed_out_from_inside_a_sandbox_stays_in_one(repo, planeai_home, tmux_cli_env):
    """An agent in a container must not get work run on the host by making or editing a task:
    tasks made through the inbox are sandboxed, and no sandbox flag can take one out."""
    env = setup(repo, planeai_home, tmux_cli_env)
    cli(env, "task", "add", "Host task", "--project", "PLA")
    script = """set +e
planeai task add 'Escape' --no-sandbox > esc.out 2>&1; echo "esc $?" >> result
planeai task add 'Sub' > sub.out 2>&1; echo "sub $?" >> result
planeai task edit PLA-2 --sandbox-as-configured > edit.out 2>&1; echo "edit $?" >> result
planeai task edit PLA-2 --no-sandbox >> edit.out 2>&1; echo "edit2 $?" >> result
"""
    start(env, script)
    s = wait_exited(env)
    wt = Path(s["worktree"])
    assert (wt / "result").read_text().split() == ["esc", "1", "sub", "0", "edit", "1",
                                                   "edit2", "1"]
    assert "cannot be taken out of it" in (wt / "esc.out").read_text()
    tasks = {t["key"]: t for t in json.loads(cli(env, "task", "list", "--json").stdout)}
    assert [t["title"] for t in tasks.values() if t["title"] == "Escape"] == []
    sub = next(t for t in tasks.values() if t["title"] == "Sub")
    assert sub["sandbox"] is True and sub["parent"] == "PLA-1"
    assert tasks["PLA-2"]["sandbox"] is None  # the host's task was not changed


@pytest.mark.parametrize("kind", ["local", "tmux", "daemon"])
def test_a_sandboxed_session_works_like_a_host_one_on_every_backend(kind, repo, planeai_home,
                                                                    request):
    """Screen, typing, scrollback and stop behave as for a host session, on each backend:
    the terminal is the backend's; only the agent in it runs in a container."""
    import test_sessions as shared
    from planeai.backends.daemon import daemon_paths
    from planeai.backends.daemon.client import daemon_pid, stop_daemon
    from planeai.services import tasks as task_svc
    from planeai.services.context import open_store
    from planeai.services.projects import add_project

    boxsh(planeai_home)
    with open_store() as s:
        project, _ = add_project(s, repo)
        key = task_svc.add_task(s, project, "Boxed on every backend").key
    tmux = None
    if kind == "tmux":
        pt = request.getfixturevalue("private_tmux")
        tmux = (pt.socket, {**pt.env(), "SHELL": "/bin/bash", "PS1": "$ "})
    m = shared._manager(kind, tmux)
    m.config.data["sandbox"]["network"] = "none"
    try:
        s = m.start(task_key=key, agent="boxsh", backend=kind, sandbox=True,
                    prompt="echo box-$((6*7))-ready; exec cat")
        assert m.sandboxed(s)
        # (the output, not the command line a tmux pane shows first)
        retry_until(shared.screen_has(m, s.id, "box-42-ready"), message="the agent")
        m.backend(kind).write(s.name, b"typed-into-the-box\n")
        # typed (the terminal echoes it) and echoed back by cat inside the container
        retry_until(lambda: m.observe(s.id).snapshot.text.count("typed-into-the-box") >= 2,
                    message="the echo from inside")
        back = m.backend(kind).scrollback(s.name)
        assert any("box-42-ready" in line for line in back), back
        assert containers(f"planeai.session={s.id}") != []
        m.stop(s.id)
        retry_until(lambda: containers(f"planeai.session={s.id}") == [],
                    message="stop to remove the container")
    finally:
        m.close()
        if kind == "daemon":
            paths = daemon_paths()
            stop_daemon(paths, timeout=10)
            pid = daemon_pid(paths)
            if pid and pid > 0:
                os.kill(pid, 9)
