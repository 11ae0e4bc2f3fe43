"""Sessions on another machine ([hosts.NAME], planeai.backends.remote), end to end, against a
real OpenSSH sshd on 127.0.0.1 whose second user stands in for the other machine
(tests/support/sshd.py) with its own tmux and git: a task dispatched there works in a
worktree there, makes a subtask on this board, reports done, and its branch is merged here;
the connection dropping, the host going down, thirty sessions over one connection, hostile
names."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from conftest import trusted_repo_provider
from planeai import config as config_mod
from planeai.paths import locations
from planeai.remote import relay
from planeai.services import hosts
from planeai.services.context import open_store
from planeai.services.dispatch import Dispatcher
from planeai.services.projects import add_project
from planeai.services.sessions import SessionManager
from support.polling import retry_until

ROOT = Path(__file__).resolve().parent.parent
AGENT = ROOT / "tests" / "support" / "scripted_agent.py"


@pytest.fixture(scope="module")
def agent_there(sshd):
    """The scripted agent where the host's user can run it (the same machine: a world-readable
    copy; the host runs it with its own python3)."""
    d = Path("/tmp") / f"pai-agent-{uuid.uuid4().hex[:8]}"
    d.mkdir(mode=0o755)
    shutil.copy(AGENT, d / "scripted_agent.py")
    os.chmod(d / "scripted_agent.py", 0o644)
    yield d / "scripted_agent.py"
    shutil.rmtree(d, ignore_errors=True)


def cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "planeai", *args],
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def ok(*args: str, **kw) -> str:
    r = cli(*args, **kw)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout


def agents_there(box: "Box"):
    """The scripted agents the host's user runs (pgrep there: its own processes only)."""
    return box.run("pgrep", "-u", box.sshd.user, "-f", "^python3 .*scripted_agent")


class Box:
    """A test's view of the host: its config, its connection, commands there as its user."""

    def __init__(self, sshd, tmp_path: Path, name: str = "box", **keys) -> None:
        self.sshd, self.name = sshd, name
        self.config_file = tmp_path / "planeai.toml"
        self.root = f"~/.planeai-{uuid.uuid4().hex[:6]}"
        table = {"ssh": sshd.target, "port": sshd.port, "ssh_config": str(sshd.client_config),
                 "root": self.root, "connect_timeout": 5, **keys}
        body = "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items())
        self.config_file.write_text(f"[defaults]\nprovider = \"scripted\"\n"
                                    f"[hosts.{name}]\n{body}")
        self.env = {"PLANEAI_CONFIG": str(self.config_file)}

    def config(self):
        return config_mod.load(user_file=None, explicit=self.config_file, env={})

    def conn(self):
        return hosts.connection(self.config().hosts[self.name], locations())

    def run(self, *argv: str) -> subprocess.CompletedProcess:
        r = self.conn().run(list(argv))
        return r

    def close(self) -> None:
        relay.stop_relay(locations(), self.name)
        try:
            self.conn().run(["tmux", "-L", self.socket(), "kill-server"])
        except Exception:
            pass
        self.conn().exit_master()

    def socket(self) -> str:
        from planeai.backends.tmux import default_socket

        return default_socket(dict(os.environ))


@pytest.fixture
def box(sshd, tmp_path, agent_there):
    b = Box(sshd, tmp_path)
    yield b
    b.close()


@pytest.fixture
def project(repo, agent_there):
    trusted_repo_provider(repo, "scripted",
                          'name = "scripted"\nbinary = "python3"\n'
                          f'command = ["python3", "{agent_there}", "{{task.key}}"]\n'
                          '[status]\nbusy = ["esc to interrupt"]\nidle = ["^> ?\\\\Z"]\n')
    with open_store() as s:
        p, _ = add_project(s, repo)
    return p


def manager(box: Box, tmp_path: Path, **dispatch) -> SessionManager:
    cfg = box.config()
    cfg.data["dispatch"].update({"poll_interval": 0.1, "backend": "local", **dispatch})
    home = tmp_path / "user-home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), **box.env}
    return SessionManager(open_store(locations()), cfg, locations(), env=env)


def run_until(d: Dispatcher, cond, timeout: float = 90.0) -> None:
    stop = threading.Event()
    t = threading.Thread(target=d.run, kwargs={"stop": stop}, daemon=True)
    t.start()
    try:
        retry_until(cond, timeout=timeout, interval=0.1, message="the dispatcher")
    finally:
        stop.set()
        t.join(30)


def task_json(key: str, box: Box) -> dict:
    return json.loads(ok("task", "show", key, "--json", env=box.env))


# ---- the whole way


def test_a_task_dispatched_to_a_host_works_there_and_lands_here(box, project, tmp_path, repo):
    key = ok("task", "add", "remote work", "-d", "write remote.txt\nsubtask Sub work\ndone",
             "--host", "box", "--project", "planeai", env=box.env).strip()
    m = manager(box, tmp_path, max_sessions=1)
    d = Dispatcher(m)

    def finished():
        tasks = json.loads(ok("task", "list", "--json", env=box.env))
        return (len(tasks) == 2 and all(t["status"] == "done" for t in tasks)
                and not d._dispatched_live())

    try:
        try:
            run_until(d, finished, timeout=40)
        except AssertionError:
            print("TASKS", ok("task", "list", "--json", env=box.env))
            print("SESS", cli("session", "list", env=box.env))
            print("LOGS", cli("session", "logs", key, env=box.env))
            print("EV", ok("events", "--json", env=box.env)[-3000:])
            raise
        s = m.store.sessions_for_task(key)[0]
        # it ran there: its backend, its worktree in the host's root, its commit there
        assert s.backend == "host:box"
        home = box.conn().home()
        assert s.worktree.startswith(home + "/")
        assert box.run("git", "-C", s.worktree, "log", "-1", "--format=%s").out.strip() \
            == f"{key}: remote.txt"
        assert not (repo / "remote.txt").exists()
        # the subtask it made from there is on this board, under its task
        sub = next(t for t in json.loads(ok("task", "list", "--json", env=box.env))
                   if t["key"] != key)
        assert sub["parent"] == key and sub["title"] == "Sub work"
        # which started from its parent's work, though that is on the host
        ss = m.store.sessions_for_task(sub["key"])[0]
        if ss.backend == "host:box":
            parent_file = box.run("cat", f"{ss.worktree}/remote.txt").out
        else:
            parent_file = Path(ss.worktree, "remote.txt").read_text()
        assert parent_file == key + "\n"
        # and the branch made there merges here
        r = cli("merge", key, env=box.env)
        assert r.returncode == 0, r.stderr
        assert (repo / "remote.txt").read_text() == key + "\n"
        log = subprocess.run(["git", "-C", str(repo), "log", "--format=%s", "main"],
                             capture_output=True, text=True, check=True).stdout
        assert f"{key}: remote.txt" in log
    finally:
        m.close()


def test_session_start_there_attach_logs_send_stop(box, project, tmp_path):
    key = ok("task", "add", "sit there", "-d", "idle", "--project", "planeai", env=box.env).strip()
    out = ok("session", "start", key, "--host", "box", env=box.env)
    assert f"started {key}" in out and "host:box" in out
    # it asked this board for its task (through the relay) and sits at its prompt
    retry_until(lambda: ok("session", "logs", key, env=box.env).rstrip().endswith(
        f"working on {key}: sit there\n>"), message="the agent's prompt there")
    attach = json.loads(ok("session", "list", "--json", env=box.env))[0]
    assert attach["backend"] == "host:box" and attach["reachable"] is True
    # attach is ssh -t to the host's tmux: the argv names the session exactly, no shell
    m = manager(box, tmp_path)
    try:
        cmd = m.attach_command(key)
    finally:
        m.close()
    assert cmd[0] == "ssh" and "-t" in cmd and cmd[-1].endswith(f"attach-session -t ={key}")
    out = ok("session", "stop", key, env=box.env)
    assert f"stopped {key}" in out
    # nothing of it runs there any more
    assert agents_there(box).out.strip() == ""
    # restart: the same agent in the same worktree there
    ok("session", "restart", key, env=box.env)
    retry_until(lambda: ok("session", "logs", key, env=box.env).rstrip().endswith(
        f"working on {key}: sit there\n>"), message="the agent back")
    listed = json.loads(ok("session", "list", "--json", env=box.env))[0]
    assert listed["state"] == "running" and listed["worktree"] == attach["worktree"]
    # reconcile: the session's tmux session gone there (killed by hand) is judged as locally
    box.run("tmux", "-L", box.socket(), "kill-session", "-t", f"={key}")
    listed = json.loads(ok("session", "list", "--json", env=box.env))[0]
    assert listed["state"] == "exited"
    assert agents_there(box).out.strip() == ""


def test_attach_from_a_terminal_here_shows_the_agent_there(box, project, private_tmux):
    key = ok("task", "add", "look at me", "-d", "idle", "--project", "planeai",
             env=box.env).strip()
    ok("session", "start", key, "--host", "box", env=box.env)
    retry_until(lambda: ok("session", "logs", key, env=box.env).rstrip().endswith(">"),
                message="the agent's prompt there")
    # a terminal of the user's: `planeai attach KEY` in it
    env = private_tmux.env({**os.environ, **box.env, "PYTHONPATH": str(ROOT)})
    term = ["tmux", "-L", private_tmux.socket]
    subprocess.run([*term, "new-session", "-d", "-s", "me", "-x", "100", "-y", "30",
                    sys.executable, "-m", "planeai", "attach", key], env=env, check=True)

    def screen() -> str:
        return subprocess.run([*term, "capture-pane", "-p", "-t", "=me:"], env=env,
                              capture_output=True, text=True).stdout

    retry_until(lambda: f"working on {key}: look at me" in screen(),
                message="the agent's screen in the terminal here")
    # typing there goes to the agent (it echoes)
    subprocess.run([*term, "send-keys", "-t", "=me:", "-l", "hello there"], env=env,
                   check=True)
    retry_until(lambda: "hello there" in ok("session", "logs", key, env=box.env),
                message="typed text reaching the agent there")
    # C-b d detaches: the agent keeps running there
    subprocess.run([*term, "send-keys", "-t", "=me:", "C-b", "d"], env=env, check=True)
    retry_until(lambda: subprocess.run([*term, "has-session", "-t", "=me"], env=env,
                                       capture_output=True).returncode != 0,
                message="the attach to end")
    assert json.loads(ok("session", "list", "--json", env=box.env))[0]["state"] == "running"
    ok("session", "stop", key, env=box.env)


def test_work_there_is_never_lost_by_a_delete(box, project, tmp_path, repo):
    key = ok("task", "add", "leave work", "-d", "idle", "--project", "planeai",
             env=box.env).strip()
    ok("session", "start", key, "--host", "box", env=box.env)
    s = json.loads(ok("session", "list", "--json", env=box.env))[0]
    wt = s["worktree"]
    r = box.conn().run(["sh", "-c", 'printf "draft\\n" > "$1/notes.txt"', "sh", wt])
    assert r.ok, r.err
    r = cli("session", "delete", key, env=box.env)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "1 untracked" in r.stderr and "--force" in r.stderr
    # refused: nothing changed there
    assert box.run("test", "-f", f"{wt}/notes.txt").ok
    assert json.loads(ok("session", "list", "--json", env=box.env))[0]["state"] == "running"
    out = ok("session", "delete", key, "--force", env=box.env)
    ref = out.split("unsaved work kept in ")[1].split()[0]
    assert not box.run("test", "-d", wt).ok
    # the work came back here, in the recovery ref
    shown = subprocess.run(["git", "-C", str(repo), "show", f"{ref}:notes.txt"],
                           capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stdout == "draft\n"


def test_the_connection_dropping_loses_no_session(box, project, tmp_path):
    key = ok("task", "add", "long one", "-d", "sleep 600", "--project", "planeai",
             env=box.env).strip()
    m = manager(box, tmp_path)
    try:
        m.start(task_key=key, host="box")
        retry_until(lambda: m.observe(key).status.value == "busy", message="busy there")
        agent_pid = agents_there(box).out.split()
        assert len(agent_pid) == 1
        conn = box.conn()
        master = conn.master_pid()
        assert master
        os.kill(master, signal.SIGKILL)  # the network goes: every channel with it
        retry_until(lambda: conn.master_pid() != master, message="the old master gone")
        # the agent kept running there; planeai reconnects on its own and sees it working
        view = retry_until(lambda: (v := m.observe(key)).snapshot is not None and v,
                           message="the session seen again")
        assert view.session.state.value == "running" and view.status.value == "busy"
        assert agents_there(box).out.split() == agent_pid
        # and a new process sees it too
        listed = json.loads(ok("session", "list", "--json", env=box.env))[0]
        assert listed["state"] == "running" and listed["reachable"] is True
        # the relay forwards again over the new connection: the agent's own `planeai`
        # (its environment as it runs there) reaches this board
        environ = box.run("cat", f"/proc/{agent_pid[0]}/environ").out.split("\0")
        agent_env = dict(e.split("=", 1) for e in environ if "=" in e)
        asked = lambda: box.conn().run(  # noqa: E731
            ["env", f"PATH={agent_env['PATH']}",
             f"PLANEAI_RELAY_SOCKET={agent_env['PLANEAI_RELAY_SOCKET']}",
             f"PLANEAI_RELAY_TOKEN={agent_env['PLANEAI_RELAY_TOKEN']}",
             "planeai", "task", "show", key, "--json"])
        shown = retry_until(lambda: (r := asked()).ok and r, message="the board from there")
        assert json.loads(shown.out)["title"] == "long one"
        m.stop(key)
    finally:
        m.close()


def test_a_host_that_goes_down_is_unreachable_and_local_work_goes_on(
        sshd, box, project, tmp_path, repo):
    key = ok("task", "add", "there", "-d", "sleep 600", "--host", "box", "--project",
             "planeai", env=box.env).strip()
    local_key = ok("task", "add", "here", "-d", "write here.txt\ndone", "--host", "local",
                   "--project", "planeai", env=box.env).strip()
    ok("session", "start", key, "--host", "box", env=box.env)
    port = sshd.port
    sshd.stop()
    try:
        box.conn().exit_master()
        listed = json.loads(ok("session", "list", "--json", env=box.env))
        there = next(x for x in listed if x["name"] == key)
        # unreachable, not exited: the agent may well still be working there
        assert there["state"] == "running" and there["reachable"] is False
        table = ok("session", "list", env=box.env)
        assert "unreachable (host down)" in table
        with open_store() as s:
            kinds = [e.kind for e in s.events(limit=10_000)]
        assert kinds.count("host.down") == 1
        assert json.loads(ok("host", "list", "--json", env=box.env))[0]["down"] is True
        # the dispatcher goes on with work here
        m = manager(box, tmp_path, max_sessions=2)
        d = Dispatcher(m)
        try:
            run_until(d, lambda: m.store.get_task(local_key).status.value == "done"
                      and not d._dispatched_live(), timeout=60)
            assert m.store.get_task(key).status.value == "in_progress"
        finally:
            m.close()
    finally:
        sshd.start()
    box.config_file.write_text(box.config_file.read_text().replace(
        f"port = {port}\n", f"port = {sshd.port}\n"))
    # back: seen running again (its agent kept working there all along)
    retry_until(lambda: json.loads(ok("session", "list", "--json", env=box.env))[0]
                ["reachable"], message="the host back")
    with open_store() as s:
        assert [e.kind for e in s.events(limit=10_000)].count("host.up") == 1
    ok("session", "stop", key, env=box.env)


def test_thirty_sessions_there_cost_one_connection(sshd, box, project, tmp_path):
    keys = [ok("task", "add", f"idle {i}", "-d", "idle", "--project", "planeai",
               env=box.env).strip() for i in range(30)]
    m = manager(box, tmp_path)
    try:
        for k in keys:
            m.start(task_key=k, host="box")
        retry_until(lambda: all(m.observe(k).status.value == "idle" for k in keys),
                    message="thirty agents idle there", timeout=90)
        # the app's way of following them: activity from one poll, no channel each
        be = m.backend("host:box")
        seen: list[str] = []
        unsubs = [be.subscribe_activity(k, lambda name, data: seen.append(name)) for k in keys]
        retry_until(lambda: be._activity_seen.keys() >= set(keys),
                    message="a first activity poll")
        be.send_keys(keys[3], "h", "i")  # echoed there: that session printed
        retry_until(lambda: keys[3] in seen, message="the typing seen as activity")
        assert set(seen) == {keys[3]}
        assert len(sshd.connections()) == 1
        for u in unsubs:
            u()
        listed = json.loads(ok("session", "list", "--json", env=box.env))
        assert sum(1 for x in listed if x["state"] == "running") == 30
        assert len(sshd.connections()) == 1  # the CLI's commands ran over it too
    finally:
        for k in keys:
            try:
                m.stop(k)
            except Exception:
                pass
        m.close()


def test_hostile_paths_and_titles_reach_nothing_as_code(sshd, tmp_path, project, canary, repo):
    root = (f"~/it's \"q\" $(touch {canary}) `touch {canary}`; #(touch {canary}) "
            "#{pane_id} a  b")
    box = Box(sshd, tmp_path, root=root)
    try:
        title = f"x $(touch {canary}) `touch {canary}` #(touch {canary}) ' \" ;"
        key = ok("task", "add", title, "-d", "write out.txt\ndone", "--project", "planeai",
                 env=box.env).strip()
        ok("session", "start", key, "--host", "box", "--autonomous", env=box.env)
        retry_until(lambda: task_json(key, box)["status"] == "done",
                    message="the agent done there")
        s = json.loads(ok("session", "list", "--json", env=box.env))[0]
        # everything landed under the root, spelled exactly as configured
        home = box.conn().home()
        assert s["worktree"] == f"{home}/{root[2:]}/worktrees/{key}"
        assert box.run("cat", f"{s['worktree']}/out.txt").out == key + "\n"
        assert box.run("test", "-e", str(canary)).rc == 1
        ok("session", "stop", key, env=box.env)
    finally:
        box.close()


def test_a_secret_reaches_the_agent_there_and_no_command_line(sshd, box, repo, agent_there,
                                                              tmp_path):
    pdir = locations().user_providers_dir  # a user provider: `secret set` knows those
    pdir.mkdir(parents=True, exist_ok=True)
    (pdir / "scripted.toml").write_text(
        'name = "scripted"\nbinary = "python3"\nsecrets = ["SCRIPTED_TOKEN"]\n'
        f'command = ["python3", "{agent_there}", "{{task.key}}"]\n'
        '[status]\nidle = ["^> ?\\\\Z"]\n')
    with open_store() as s:
        add_project(s, repo)
    box.config_file.write_text(box.config_file.read_text() + '[secrets]\nstore = "file"\n')
    value = f"tok-{uuid.uuid4().hex}"
    r = subprocess.run([sys.executable, "-m", "planeai", "secret", "set", "scripted",
                        "SCRIPTED_TOKEN", "--stdin"], input=value + "\n", text=True,
                       capture_output=True, env={**os.environ, **box.env}, timeout=60)
    assert r.returncode == 0, r.stderr
    key = ok("task", "add", "secret work", "-d", "idle", "--project", "planeai",
             env=box.env).strip()
    ok("session", "start", key, "--host", "box", env=box.env)
    pid = retry_until(lambda: agents_there(box).out.split(),
                      message="the agent there")[0]
    environ = box.run("cat", f"/proc/{pid}/environ").out.split("\0")
    assert f"SCRIPTED_TOKEN={value}" in environ
    # on no command line there (nor here), in no environment tmux shows, in no file left
    assert value not in box.run("ps", "-eww", "-o", "args").out
    assert value not in subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True,
                                       text=True).stdout
    sock = box.socket()
    assert value not in box.run("tmux", "-L", sock, "show-environment", "-g").out
    assert value not in box.run("tmux", "-L", sock, "show-environment", "-t", key).out
    found = box.run("grep", "-rl", "--", value, box.conn().path(box.root)).out
    assert found == ""
    ok("session", "stop", key, env=box.env)


def test_the_dispatcher_spreads_work_over_the_machines(sshd, tmp_path, project):
    box = Box(sshd, tmp_path, max_sessions=2)
    try:
        keys = [ok("task", "add", f"t{i}", "-d", "sleep 3\nwrite f.txt\ndone", "--project",
                   "planeai", env=box.env).strip() for i in range(3)]
        m = manager(box, tmp_path, max_sessions=1)
        d = Dispatcher(m)
        try:
            d.tick()
            running = d._dispatched_live()
            # all three at once: one here (its max), two there (its max)
            assert sorted(s.backend for s in running) == ["host:box", "host:box", "local"]
            run_until(d, lambda: all(m.store.get_task(k).status.value == "done" for k in keys)
                      and not d._dispatched_live())
        finally:
            m.close()
    finally:
        box.close()


def test_a_sandboxed_session_on_a_host_runs_in_docker_there(sshd, box, repo, tmp_path):
    from support.docker_sandbox import BASE_IMAGE, engine_problem, ensure_image

    problem = engine_problem()
    if problem:
        pytest.skip(problem)
    ensure_image("base", BASE_IMAGE)
    # the host's user may use the host's engine (on this machine: the same one)
    subprocess.run(["usermod", "-aG", "docker", sshd.user], check=True, capture_output=True)
    pdir = locations().user_providers_dir
    pdir.mkdir(parents=True, exist_ok=True)
    (pdir / "boxsh.toml").write_text(
        f'name = "boxsh"\ncommand = ["sh", "-c", "{{prompt}}"]\n'
        f'docker_image = "{BASE_IMAGE}"\n')
    with open_store() as s:
        add_project(s, repo)
    box.config_file.write_text(box.config_file.read_text() + '[sandbox]\nnetwork = "none"\n')
    key = ok("task", "add", "boxed there", "--project", "planeai", env=box.env).strip()
    script = """set +e
echo inside > boxed.txt; git add boxed.txt; git commit -qm "boxed there"; echo "commit $?" >> r
planeai task add 'Sub from the box' > sub.out 2>&1; echo "sub $?" >> r
planeai task add 'Escape' --no-sandbox > esc.out 2>&1; echo "esc $?" >> r
grep -q 'NoNewPrivs:.1' /proc/1/status && echo nnp >> r
[ -e /home/%s/.ssh ] || echo nossh >> r
""" % sshd.user
    out = ok("session", "start", key, "--host", "box", "--provider", "boxsh", "--sandbox",
             "--prompt", script, env=box.env)
    assert "(sandboxed)" in out and "host:box" in out
    s = retry_until(lambda: (x := json.loads(ok("session", "list", "--json",
                                                 env=box.env))[0])["state"] == "exited" and x,
                    message="the sandboxed agent to finish there", timeout=60)
    assert s["sandbox"] is True and s["backend"] == "host:box"
    wt = s["worktree"]
    assert box.run("cat", f"{wt}/r").out.split() == ["commit", "0", "sub", "0", "esc", "1",
                                                     "nnp", "nossh"]
    assert box.run("git", "-C", wt, "log", "-1", "--format=%s").out.strip() == "boxed there"
    tasks = {t["title"]: t for t in json.loads(ok("task", "list", "--json", env=box.env))}
    assert tasks["Sub from the box"]["parent"] == key and tasks["Sub from the box"]["sandbox"]
    assert "Escape" not in tasks
    # the container is gone there
    names = box.run("docker", "ps", "-a", "--format", "{{.Names}}").out.split()
    assert not [n for n in names if n.startswith(f"planeai-{key}-")]
    # images reach a host with `planeai sandbox push` (docker save | ssh docker load)
    out = ok("sandbox", "push", "boxsh", "--host", "box", env=box.env)
    assert f"{BASE_IMAGE} is on host box" in out
    r = cli("sandbox", "push", "claude-nosuch", "--host", "box", env=box.env)
    assert r.returncode == 1 and r.stderr.startswith("planeai: error: ") \
        and r.stderr.count("\n") == 1


def test_a_dispatch_rule_pins_matching_tasks_to_a_host(sshd, tmp_path, project):
    box = Box(sshd, tmp_path, max_sessions=3)
    try:
        box.config_file.write_text(box.config_file.read_text().replace(
            "[hosts.box]", '[dispatch]\nrules = [{ title = "^remote:", host = "box" }]\n'
                           "[hosts.box]"))
        there = ok("task", "add", "remote: build it", "-d", "write a.txt\ndone", "--project",
                   "planeai", env=box.env).strip()
        here = ok("task", "add", "local: test it", "-d", "write b.txt\ndone", "--project",
                  "planeai", env=box.env).strip()
        m = manager(box, tmp_path, max_sessions=3)  # here has the most free slots
        d = Dispatcher(m)
        try:
            run_until(d, lambda: all(m.store.get_task(k).status.value == "done"
                                     for k in (there, here)) and not d._dispatched_live())
            assert m.store.sessions_for_task(there)[0].backend == "host:box"
            assert m.store.sessions_for_task(here)[0].backend == "local"
        finally:
            m.close()
        # a rule naming a host that is not one is refused when config is read
        bad = tmp_path / "bad.toml"
        bad.write_text(box.config_file.read_text().replace('host = "box"',
                                                           'host = "not a host"'))
        r = cli("session", "list", env={"PLANEAI_CONFIG": str(bad)})
        assert r.returncode == 1 and r.stderr.count("\n") == 1
        assert "rule 1: host 'not a host'" in r.stderr
    finally:
        box.close()


def test_a_live_view_of_a_session_there_survives_the_connection_dropping(box, project,
                                                                         tmp_path):
    key = ok("task", "add", "watched", "-d", "idle", "--project", "planeai",
             env=box.env).strip()
    m = manager(box, tmp_path)
    try:
        m.start(task_key=key, host="box")
        be = m.backend("host:box")
        retry_until(lambda: be.snapshot(key).text.rstrip().endswith(">"),
                    message="the agent's prompt there")
        screens, output = [], []
        unsub = be.subscribe_screen(key, screens.append,
                                    lambda name, data: output.append(data))
        try:
            retry_until(lambda: screens, message="the first screen")
            os.kill(box.conn().master_pid(), signal.SIGKILL)  # the network goes
            # typing after it: the view's stream comes back and carries the echo
            retry_until(lambda: _typed(be, key, "after the drop") and
                        b"after the drop" in b"".join(output) + b"".join(
                            s.ansi for s in screens[1:] if s is not None),
                        message="the echo through the view after the drop")
        finally:
            unsub()
        assert json.loads(ok("session", "list", "--json", env=box.env))[0]["state"] \
            == "running"
        m.stop(key)
    finally:
        m.close()


def _typed(be, key: str, text: str) -> bool:
    """Type ``text`` once (later calls only report that it was typed)."""
    done = getattr(be, "_typed_marks", set())
    if (key, text) not in done:
        try:
            be.send_keys(key, *text)
        except Exception:
            return False  # not reconnected yet: try again
        done.add((key, text))
        be._typed_marks = done
    return True


def test_a_branch_made_there_is_pushed_for_a_pull_request_from_here(box, project, repo,
                                                                     tmp_path):
    shared = tmp_path / "shared.git"
    subprocess.run(["git", "init", "-q", "--bare", str(shared)], check=True)
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", str(shared)],
                   check=True)
    key = ok("task", "add", "pr there", "-d", "write pr.txt\ndone", "--project", "planeai",
             env=box.env).strip()
    ok("session", "start", key, "--host", "box", "--autonomous", env=box.env)
    retry_until(lambda: task_json(key, box)["status"] == "done", message="done there")
    s = json.loads(ok("session", "list", "--json", env=box.env))[0]
    # uncommitted work there refuses the push until --commit
    assert box.conn().run(["sh", "-c", 'echo more > "$1/more.txt"', "sh", s["worktree"]]).ok
    r = cli("pr", key, env=box.env)
    assert r.returncode == 1 and "uncommitted" in r.stderr and r.stderr.count("\n") == 1
    r = cli("pr", key, "--commit", env=box.env)
    assert r.returncode == 0, r.stderr
    files = subprocess.run(["git", "-C", str(shared), "ls-tree", "--name-only", "-r",
                            s["branch"]], capture_output=True, text=True, check=True).stdout
    assert {"pr.txt", "more.txt"} <= set(files.split())


@pytest.mark.parametrize("spawned", [True, False])
def test_a_start_there_whose_starter_died_is_settled_by_its_claim_there(box, project,
                                                                         tmp_path, spawned):
    """The starter died between reserving and recording: an agent it spawned there is
    adopted (not run again); one it never spawned never runs, even if the spawn reaches the
    host's tmux late."""
    from planeai.backends.base import SpawnSpec
    from planeai.services.claims import EXIT_ABORTED, Claim
    from planeai.services.session_remote import RemoteClaim

    key = ok("task", "add", "half started", "-d", "idle", "--project", "planeai",
             env=box.env).strip()
    m = manager(box, tmp_path)
    try:
        be = m.backend("host:box")
        s_id = "5ta1e002"
        local = Claim(m.session_dir(s_id)).prepare()
        claim = RemoteClaim(local.dir, be, m.remote_session_dir(be, s_id))
        claim._fd, local._fd = local._fd, None
        claim.put()
        m.store.add_session(id=s_id, name=key, project=project, task_key=key,
                            provider="scripted", variant=None, backend="host:box",
                            worktree=None, branch=None, autonomous=True, argv=["sh"])
        mark = f"{be.root()}/ran-{s_id}"
        argv = claim.wrap(["/bin/sh", "-c", f'touch "{mark}"; sleep 600'])
        if spawned:
            be.spawn(SpawnSpec(key, argv, be.root(), {}))
            retry_until(lambda: claim.started, message="the agent past its claim there")
        claim.release()  # the starter dies here: nothing recorded
        view = m.observe(key)
        kinds = [e.kind for e in m.store.events(task_key=key)]
        if spawned:
            assert view.session.state.value == "running" and view.session.pid
            started = [e for e in m.store.events(task_key=key) if e.kind == "session.started"]
            assert len(started) == 1 and started[0].data["adopted"]
            m.stop(key)
        else:
            assert view.session.state.value == "exited" and "session.aborted" in kinds
            be.spawn(SpawnSpec(key, argv, be.root(), {}))  # the spawn arriving late
            info = retry_until(lambda: (i := be.info(key)) and not i.alive and i,
                               message="the late pane ended")
            assert info.exit_code == EXIT_ABORTED
            assert not box.run("test", "-e", mark).ok
            be.forget(key)
    finally:
        m.close()
