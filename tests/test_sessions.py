"""Sessions end to end on the real backends: local PTYs and a private tmux server."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import retry_until

from planeai import config as config_mod
from planeai.backends.local import LocalBackend
from planeai.backends.tmux import TmuxBackend
from planeai.core.models import SessionState, Status
from planeai.core.status import AgentStatus
from planeai.errors import BackendError, PlaneaiError, ProviderError, WorktreeError
from planeai.paths import locations
from planeai.services import tasks as task_svc
from planeai.services import trust
from planeai.services.context import open_store
from planeai.services.projects import add_project
from planeai.services.sessions import SessionManager

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


@pytest.fixture
def tmux_env(tmp_path: Path):
    """A private tmux server: own -L socket, HOME and TMUX_TMPDIR in tmp; killed at teardown."""
    socket = f"pt-{secrets.token_hex(4)}"
    tmpdir = Path("/tmp") / f"pt-{secrets.token_hex(3)}"  # short: socket paths are limited
    tmpdir.mkdir()
    env = {**os.environ, "HOME": str(tmp_path), "TMUX_TMPDIR": str(tmpdir),
           "SHELL": "/bin/bash", "PS1": "$ "}
    env.pop("TMUX", None)
    yield socket, env
    subprocess.run(["tmux", "-L", socket, "kill-server"], env=env, capture_output=True)
    shutil.rmtree(tmpdir, ignore_errors=True)


def _manager(backend_kind: str, tmux_env=None, extra_env=None) -> SessionManager:
    locs = locations()
    cfg = config_mod.load(user_file=None, env={})
    # a HOME of its own: the user's dotfiles (pyenv init, prompts) must not slow or break tests
    home = locs.data_dir.parent / "user-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(home), "SHELL": "/bin/bash", "PS1": "$ ",
           **(extra_env or {})}
    backends = {}
    if backend_kind == "tmux":
        socket, tenv = tmux_env
        cfg.data["tmux"]["socket"] = socket
        backends["tmux"] = TmuxBackend(socket, env=tenv, runtime_dir=locs.runtime_dir)
        env.update({"HOME": tenv["HOME"], "TMUX_TMPDIR": tenv["TMUX_TMPDIR"]})
    return SessionManager(open_store(locs), cfg, locs, backends=backends, env=env)


@pytest.fixture(params=["local", pytest.param("tmux", marks=needs_tmux)])
def kind(request):
    return request.param


@pytest.fixture
def mgr(kind, request, tmp_path):
    tenv = request.getfixturevalue("tmux_env") if kind == "tmux" else None
    m = _manager(kind, tenv)
    yield m
    m.close()


@pytest.fixture
def project(repo):
    with open_store() as s:
        p, _ = add_project(s, repo)
    return p


def _task(title="Fix the parser", **kw) -> str:
    with open_store() as s:
        p = s.list_projects()[0]
        return task_svc.add_task(s, p, title, **kw).key


def screen_has(m: SessionManager, ref: str, text: str):
    def check():
        v = m.observe(ref)
        # rows are right-stripped, so joining them undoes the terminal's line wrapping
        return v.snapshot is not None and text in "".join(v.snapshot.lines) and v

    return check


def test_shell_session_lifecycle(mgr, kind, project):
    key = _task()
    s = mgr.start(task_key=key, agent="shell", backend=kind)
    assert s.state is SessionState.RUNNING and s.name == key
    assert s.branch == "planeai/PLA-1-fix-the-parser"
    assert Path(s.worktree).is_dir() and Path(s.worktree, "README.md").is_file()
    assert mgr.store.get_task(key).status is Status.IN_PROGRESS
    # the agent's environment carries its context
    mgr.send(key, "echo task=$PLANEAI_TASK_KEY project=$PLANEAI_PROJECT wt=$PWD")
    retry_until(screen_has(mgr, key, f"task={key} project=planeai wt={s.worktree}"),
                message="the env echo")
    mgr.send(key, "echo hi")
    retry_until(lambda: any(ln.strip() == "hi" for ln in mgr.observe(key).snapshot.lines),
                message="'hi' on the screen")
    retry_until(lambda: mgr.observe(key).status is AgentStatus.IDLE, message="idle at prompt")
    assert any(ln.strip() == "hi" for ln in mgr.logs(key))
    stopped = mgr.stop(key)
    assert stopped.state is SessionState.EXITED and stopped.exit_code is not None
    assert mgr.observe(key).status is AgentStatus.EXITED
    restarted = mgr.restart(key)
    assert restarted.state is SessionState.RUNNING and restarted.exit_code is None
    assert restarted.worktree == s.worktree
    mgr.send(key, "exit 3")
    retry_until(lambda: mgr.observe(key).session.exit_code == 3, message="exit code 3")
    kinds = [e.kind for e in mgr.store.events(task_key=key)]
    for k in ("session.created", "session.started", "session.stopped", "session.restarted",
              "session.exited"):
        assert k in kinds
    assert kinds.index("session.started") < kinds.index("session.stopped")


def test_hostile_title_and_huge_prompt_reach_the_agent_unchanged(kind, request, project,
                                                                   tmp_path):
    """No shell anywhere: a title full of shell syntax and a 1 MB prompt arrive byte for byte."""
    out = tmp_path / "received.json"
    canary = tmp_path / "CANARY"
    pdir = Path(project.path) / ".planeai" / "providers"
    pdir.mkdir(parents=True)
    script = ("import json,sys,pathlib;"
              f"json.dump(sys.argv[1:], open({str(out)!r},'w'));"
              "import time; time.sleep(30)")
    (pdir / "probe.toml").write_text(
        'name = "probe"\nbinary = "python3"\n'
        f'command = ["python3", "-c", {json.dumps(script)}, "{{task.title}}", "{{prompt}}"]\n')
    trust.trust(trust.read_content(project.path))  # project provider files run once trusted
    hostile = f'$(touch {canary}) `touch {canary}`; touch {canary} "q" \'s\' -rf --x'
    key = _task(hostile)
    tenv = request.getfixturevalue("tmux_env") if kind == "tmux" else None
    m = _manager(kind, tenv)
    try:
        prompt = "line1\n$(touch %s)\n" % canary + "ü" * 10 + "x" * (1024 * 1024)
        m.start(task_key=key, agent="probe", backend=kind, prompt=prompt)
        got = retry_until(lambda: out.is_file() and out.stat().st_size and
                          json.loads(out.read_text()), message="the probe's argv")
        assert got[0] == hostile
        # 1 MB does not fit one argv element: it went through a private file
        assert got[1].startswith("Your instructions are in the file ")
        path = got[1].split("file ", 1)[1].split(". Read", 1)[0]
        assert Path(path).read_bytes() == prompt.encode("utf-8")
        assert oct(Path(path).stat().st_mode & 0o777) == "0o600"
        assert not canary.exists()
        short = m.start(task_key=key, agent="probe", backend=kind, worktree=False,
                        prompt="-rf $(touch %s)" % canary, allow_more=True)
        retry_until(lambda: json.loads(out.read_text())[1:] == ["-rf $(touch %s)" % canary],
                    message="the short prompt as one argv element")
        assert short.name == f"{key}-2"
        assert not canary.exists()
    finally:
        m.close()


def test_twelve_sessions_created_at_once(project):
    keys = [_task(f"task {i}") for i in range(12)]
    backend = LocalBackend()
    errors = []

    def start(key):
        m = _manager("local")
        m._backends["local"] = backend
        try:
            m.start(task_key=key, agent="shell", backend="local")
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(f"{key}: {e}")
        finally:
            m.store.close()

    threads = [threading.Thread(target=start, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert errors == []
        branches = subprocess.run(["git", "-C", project.path, "branch", "--list", "planeai/*"],
                                  capture_output=True, text=True, check=True).stdout.split()
        assert len([b for b in branches if b.startswith("planeai/")]) == 12
        assert sorted(i.name for i in backend.list() if i.alive) == sorted(keys)
    finally:
        backend.close()


@needs_tmux
def test_tmux_sessions_survive_the_app_and_reconcile(project, tmux_env):
    key = _task()
    m1 = _manager("tmux", tmux_env)
    m1.start(task_key=key, agent="shell", backend="tmux")
    m1.send(key, "echo before-exit")
    retry_until(screen_has(m1, key, "before-exit"))
    m1.close()  # planeai exits: its control client detaches

    socket, tenv = tmux_env
    ls = subprocess.run(["tmux", "-L", socket, "list-sessions", "-F", "#{session_name}"],
                        env=tenv, capture_output=True, text=True)
    assert key in ls.stdout.split()

    m2 = _manager("tmux", tmux_env)
    try:
        assert m2.reconcile() == []  # still running: re-adopted, nothing changed
        view = m2.observe(key)
        assert view.session.state is SessionState.RUNNING and "before-exit" in view.snapshot.text
        assert m2.attach_command(key)[-2:] == ["-t", f"={key}"]
        # the tmux server dies: the next reconcile marks the session exited, nothing else lost
        subprocess.run(["tmux", "-L", socket, "kill-server"], env=tenv, check=True)
        changed = m2.reconcile()
        assert [c.name for c in changed] == [key]
        s = m2.get(key)
        assert s.state is SessionState.EXITED
        lost = [e for e in m2.store.events(task_key=key) if e.kind == "session.lost"]
        assert lost and "tmux" in lost[0].data["reason"]
        assert m2.store.get_task(key).title == "Fix the parser"
        assert Path(s.worktree).is_dir()
    finally:
        m2.close()


@needs_tmux
def test_tmux_exact_targets(project, tmux_env):
    k1 = _task("one")
    for i in range(10):
        _task(f"filler {i}")
    k12 = _task("twelve")
    assert (k1, k12) == ("PLA-1", "PLA-12")
    m = _manager("tmux", tmux_env)
    try:
        m.start(task_key=k12, agent="shell", backend="tmux", worktree=False)
        m.start(task_key=k1, agent="shell", backend="tmux", worktree=False)
        m.send(k1, "echo only-in-one")
        retry_until(screen_has(m, k1, "only-in-one"))
        assert "only-in-one" not in m.observe(k12).snapshot.text
        m.stop(k1)
        assert m.observe(k12).session.state is SessionState.RUNNING
    finally:
        m.close()


def test_delete_refuses_unsaved_work_and_force_keeps_a_recovery_ref(mgr, kind, project):
    key = _task()
    s = mgr.start(task_key=key, agent="shell", backend=kind)
    Path(s.worktree, "work.txt").write_text("precious\n")
    with pytest.raises(WorktreeError, match="untracked"):
        mgr.delete(key)
    assert Path(s.worktree, "work.txt").is_file()
    assert mgr.get(key).state is SessionState.RUNNING  # a refusal changes nothing
    ref = mgr.delete(key, force=True)
    assert ref and ref.startswith("refs/planeai/recovery/")
    assert not Path(s.worktree).exists()
    content = subprocess.run(["git", "-C", project.path, "show", f"{ref}:work.txt"],
                             capture_output=True, text=True, check=True).stdout
    assert content == "precious\n"
    with pytest.raises(PlaneaiError, match="no session"):
        mgr.get(key)


def test_unknown_and_missing_agents(mgr, kind, project):
    key = _task()
    with pytest.raises(ProviderError, match="did you mean claude-opus"):
        mgr.start(task_key=key, agent="claude-opsu", backend=kind)
    with pytest.raises(ProviderError, match="unknown agent 'nosuch'"):
        mgr.start(task_key=key, agent="nosuch", backend=kind)
    pdir = Path(project.path) / ".planeai" / "providers"
    pdir.mkdir(parents=True)
    (pdir / "ghost.toml").write_text('name = "ghost"\nbinary = "ghost-cli"\n'
                                     'install_hint = "npm i -g ghost"\ncommand = ["ghost-cli"]\n')
    trust.trust(trust.read_content(project.path))
    mgr._registries.clear()
    with pytest.raises(ProviderError, match="'ghost-cli' not found; install: npm i -g ghost"):
        mgr.start(task_key=key, agent="ghost", backend=kind)
    assert mgr.store.list_sessions() == []  # nothing half-created
    assert mgr.store.get_task(key).status is Status.TODO


def test_scratch_session_without_task(mgr, kind, project):
    s = mgr.start(project=project, agent="shell", backend=kind)
    assert s.name == "PLA-scratch" and s.task_key is None and s.worktree is None
    mgr.send(s.name, "pwd")
    retry_until(screen_has(mgr, s.name, project.path),
                message=f"pwd output; screen={mgr.observe(s.name).snapshot.text!r}")


def test_local_sessions_of_a_dead_app_are_marked_lost(project):
    key = _task()
    m1 = _manager("local")
    s = m1.start(task_key=key, agent="shell", backend="local")
    m1.close()  # the app exits: its PTYs end with it
    m2 = _manager("local")
    try:
        retry_until(lambda: [c.name for c in m2.reconcile()] == [s.name] or
                    m2.get(key).state is SessionState.EXITED, message="reconcile")
        assert m2.get(key).state is SessionState.EXITED
    finally:
        m2.close()


def test_backend_errors_are_clear(project):
    m = _manager("local")
    try:
        with pytest.raises(BackendError, match="unknown backend 'docker'"):
            m.backend("docker")
        with pytest.raises(BackendError, match="no local session"):
            m.backend("local").write("PLA-404", b"x")
    finally:
        m.close()
