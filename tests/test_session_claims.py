"""Starting a session exactly once: concurrent starts of one task, starters killed before they
could record what they started, and sessions whose backend lost them while their processes
lived on. Real CLI processes, a private tmux server, real git."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_repo, retry_until

from planeai import config as config_mod
from planeai.backends import procs
from planeai.backends.base import SpawnSpec
from planeai.backends.tmux import TmuxBackend
from planeai.core.models import SessionState
from planeai.core.status import AgentStatus
from planeai.paths import locations
from planeai.services import tasks as task_svc
from planeai.services.claims import EXIT_ABORTED, Claim
from planeai.services.context import open_store
from planeai.services.projects import add_project
from planeai.services.sessions import SessionManager

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


@pytest.fixture
def tmux(tmp_path, private_tmux):
    """(socket, env for planeai processes and tmux) on the test's private server."""
    socket, tmux_tmp = private_tmux
    home = tmp_path / "user-home"
    home.mkdir()
    cfg = tmp_path / "planeai.toml"
    cfg.write_text(f'[tmux]\nsocket = "{socket}"\n[defaults]\nbackend = "tmux"\n')
    env = {**os.environ, "TMUX_TMPDIR": str(tmux_tmp), "HOME": str(home),
           "PLANEAI_CONFIG": str(cfg), "SHELL": "/bin/sh"}
    env.pop("TMUX", None)
    return socket, env


def manager(socket: str, env: dict) -> SessionManager:
    locs = locations()
    cfg = config_mod.load(user_file=None, env={})
    cfg.data["tmux"]["socket"] = socket
    backends = {"tmux": TmuxBackend(socket, env=env, runtime_dir=locs.runtime_dir)}
    return SessionManager(open_store(locs), cfg, locs, backends=backends, env=env)


def provider(planeai_home: Path, name: str, script: str) -> None:
    """A user provider file: an agent that is `sh -c SCRIPT` (argv only)."""
    d = planeai_home / "config" / "providers"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.toml").write_text(
        f'name = "{name}"\nbinary = "sh"\n'
        f'command = ["/bin/sh", "-c", {json.dumps(script)}, "{name}"]\n')


def new_task(repo: Path, title: str = "Fix it") -> str:
    with open_store() as s:
        project = s.find_project(str(repo)) or add_project(s, repo)[0]
        return task_svc.add_task(s, project, title).key


def tmux_sessions(socket: str, env: dict) -> list[str]:
    r = subprocess.run(["tmux", "-L", socket, "list-sessions", "-F", "#{session_name}"],
                       env=env, capture_output=True, text=True)
    return sorted(n for n in r.stdout.split() if not n.startswith("__"))


def test_four_concurrent_starts_of_one_task_start_exactly_one(repo, tmp_path, tmux):
    socket, env = tmux
    key = new_task(repo)
    go, ready = tmp_path / "GO", tmp_path / "ready"
    ready.mkdir()
    # each process imports planeai, says so, and waits for GO: the four are released together
    launcher = ("import os, sys, time\nfrom planeai.cli.main import main\n"
                f"open(os.path.join({str(ready)!r}, str(os.getpid())), 'w').close()\n"
                f"while not os.path.exists({str(go)!r}):\n    time.sleep(0.001)\n"
                "sys.exit(main(sys.argv[1:]))\n")
    procs_ = [subprocess.Popen([sys.executable, "-c", launcher, "session", "start", key,
                                "--provider", "shell", "--backend", "tmux"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(4)]
    retry_until(lambda: len(os.listdir(ready)) == 4, message="four starters ready")
    go.touch()
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs_]
    winners = [r for r in results if r[0] == 0]
    losers = [r for r in results if r[0] != 0]
    assert len(winners) == 1, results
    assert winners[0][1].startswith(f"started {key}:")
    for code, out, err in losers:
        assert code == 1 and out == "", (code, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        assert lines[0].startswith(f"planeai: error: {key} already has a live session {key} ")
    with open_store() as s:
        sessions = s.sessions_for_task(key)
    assert [(x.name, x.state) for x in sessions] == [(key, SessionState.RUNNING)]
    assert tmux_sessions(socket, env) == [key]


def test_a_start_killed_before_its_spawn_never_runs_the_agent(tmp_path, planeai_home, tmux):
    """`session start` is SIGKILLed while its worktree is being made (a slow checkout): the
    session was reserved but never spawned. Whoever looks next settles it as never run, and
    even the spawn command reaching tmux after that (as one written just before a SIGKILL
    can) runs nothing."""
    socket, env = tmux
    canary = tmp_path / "AGENT-RAN"
    provider(planeai_home, "canary", f'touch "{canary}"; sleep 30')
    repo = make_repo(tmp_path / "slow")
    (repo / ".gitattributes").write_text("*.bin filter=slowfetch\n")
    (repo / "model.bin").write_bytes(b"\0")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "big"], check=True)
    gitconfig = tmp_path / "global.gitconfig"
    release = tmp_path / "RELEASE-CHECKOUT"
    # the checkout waits for the test, however loaded the machine: the kill surely lands
    # while the worktree is being made, before anything is spawned
    gitconfig.write_text('[filter "slowfetch"]\n\tsmudge = "while [ ! -e %s ]; do sleep 0.05; '
                         'done; cat"\n\tclean = cat\n' % release)
    key = new_task(repo)
    starter = subprocess.Popen(
        [sys.executable, "-m", "planeai.cli.main", "session", "start", key, "--provider",
         "canary", "--backend", "tmux"], env={**env, "GIT_CONFIG_GLOBAL": str(gitconfig)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with open_store() as s:
        retry_until(lambda: s.sessions_for_task(key), message="the session reserved")
    starter.send_signal(signal.SIGKILL)
    starter.communicate()
    m = manager(socket, env)
    try:
        s = m.store.sessions_for_task(key)[0]
        assert s.state is SessionState.CREATED and s.pid is None
        view = m.observe(s.id)
        assert view.status is AgentStatus.EXITED and view.session.pid is None
        kinds = [e.kind for e in m.store.events(task_key=key)]
        assert "session.aborted" in kinds and "session.lost" not in kinds
        # the late spawn: the agent's own argv behind its claim, as the starter would have
        be = m.backend("tmux")
        claim = Claim(m.locs.state_dir / "sessions" / s.id)
        be.spawn(SpawnSpec(s.name, claim.wrap(["/bin/sh", "-c", f'touch "{canary}"']),
                           str(repo), dict(env)))
        info = retry_until(lambda: (i := be.info(s.name)) and not i.alive and i,
                           message="the late pane ended")
        assert info.exit_code == EXIT_ABORTED
        assert not canary.exists()
    finally:
        release.touch()  # the killed starter's git checkout may still wait
        m.close()


def test_an_agent_started_by_a_starter_that_died_is_adopted_then_judged(repo, tmp_path, tmux):
    """The starter spawned the agent, then died before recording it: the agent ran, so it is
    adopted (not re-run, not called interrupted) and its exit status is what counts."""
    socket, env = tmux
    key = new_task(repo)
    gate = tmp_path / "GATE"
    m = manager(socket, env)
    try:
        with open_store() as s:
            project = s.list_projects()[0]
        s_id = "5ta1e001"
        claim = Claim(m.session_dir(s_id)).prepare()
        s = m.store.add_session(id=s_id, name=key, project=project, task_key=key,
                                provider="shell", variant=None, backend="tmux", worktree=None,
                                branch=None, autonomous=True, argv=["sh"])
        m.backend("tmux").spawn(SpawnSpec(
            key, claim.wrap(["/bin/sh", "-c", f'while [ ! -e "{gate}" ]; do sleep 0.05; '
                                              'done; exit 0']), str(repo), dict(env)))
        retry_until(lambda: claim.started, message="the agent past its claim")
        claim.release()  # the starter dies here: nothing recorded
        view = m.observe(key)
        assert view.session.state is SessionState.RUNNING and view.session.pid
        assert procs.session_processes(view.session.pid)
        started = [e for e in m.store.events(task_key=key) if e.kind == "session.started"]
        assert len(started) == 1 and started[0].data["adopted"]
        gate.touch()
        done = retry_until(lambda: (v := m.observe(key)).status is AgentStatus.EXITED and v,
                           message="the adopted agent's exit")
        assert done.session.exit_code == 0 and done.session.pid == view.session.pid
    finally:
        m.close()


def test_lost_means_nothing_of_the_session_still_runs(repo, tmp_path, planeai_home, tmux):
    """The tmux server dies, but the agent ignores the hangup and lives on, orphaned: before
    the store calls the session lost (and a dispatcher could run the task again), its
    processes are ended."""
    socket, env = tmux
    pidfile = tmp_path / "agent.pid"
    provider(planeai_home, "stubborn",
             f"trap '' HUP TERM INT; echo $$ > \"{pidfile}\"; while :; do sleep 0.1; done")
    key = new_task(repo)
    m = manager(socket, env)
    try:
        s = m.start(task_key=key, agent="stubborn", backend="tmux", worktree=False)
        agent = int(retry_until(lambda: pidfile.exists() and pidfile.read_text().strip(),
                                message="the agent's pid"))
        subprocess.run(["tmux", "-L", socket, "kill-server"], env=env, check=True)
        m.close()
        m = manager(socket, env)
        changed = m.reconcile()
        assert [c.name for c in changed] == [key]
        lost = m.get(key)
        assert lost.state is SessionState.EXITED
        # at the moment it is recorded lost, nothing of it runs
        assert procs.session_processes(s.pid) == []
        assert not Path(f"/proc/{agent}").exists() or \
            Path(f"/proc/{agent}/stat").read_text().split(") ")[1][0] == "Z"
        ev = [e for e in m.store.events(task_key=key) if e.kind == "session.lost"]
        assert len(ev) == 1 and "tmux" in ev[0].data["reason"]
    finally:
        m.close()
