"""`planeai dispatch run` as a user runs it: --once delivers what it started, --project keeps
to its project. Real processes on a private tmux server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import make_repo, planeai_cmd, retry_until

from planeai import config as config_mod
from planeai.backends.tmux import TmuxBackend
from planeai.core.models import Status
from planeai.core.status import AgentStatus
from planeai.paths import locations
from planeai.services import tasks as task_svc
from planeai.services.context import open_store
from planeai.services.projects import add_project
from planeai.services.sessions import SessionManager

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


def user_provider(planeai_home: Path, name: str, command: list[str], extra: str = "") -> None:
    d = planeai_home / "config" / "providers"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.toml").write_text(f'name = "{name}"\nbinary = "sh"\n'
                                    f"command = {json.dumps(command)}\n" + extra)


def cli_env(tmp_path: Path, socket: str, tmux_tmp: Path, provider: str) -> dict:
    cfg = tmp_path / "planeai.toml"
    cfg.write_text(f'[defaults]\nprovider = "{provider}"\n[tmux]\nsocket = "{socket}"\n'
                   '[dispatch]\nbackend = "tmux"\npoll_interval = 0.1\nmax_sessions = 3\n')
    home = tmp_path / "user-home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "PLANEAI_CONFIG": str(cfg), "TMUX_TMPDIR": str(tmux_tmp),
           "HOME": str(home)}
    env.pop("TMUX", None)
    return env


def test_once_delivers_deferred_prompts_before_it_exits(repo, tmp_path, planeai_home,
                                                        private_tmux):
    """An agent that takes its prompt typed in (no {prompt} in its command): `--once`
    starts it and pastes the prompt once it is ready, then exits, not before."""
    socket, tmux_tmp = private_tmux
    got = tmp_path / "prompt-line.txt"
    user_provider(planeai_home, "reader", [
        "/bin/sh", "-c", 'sleep 0.5; printf "> "; read -r line; printf "%s\\n" "$line" > "$0"; '
        "sleep 60", str(got)], '[status]\nidle = ["^> ?\\\\Z"]\n')
    with open_store() as s:
        project, _ = add_project(s, repo)
        key = task_svc.add_task(s, project, "Read me").key
    env = cli_env(tmp_path, socket, tmux_tmp, "reader")
    r = subprocess.run(planeai_cmd() + ["dispatch", "run", "--once"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"dispatched {key}" in r.stdout
    with open_store() as s:
        # delivered by the process that started it, before it exited
        assert [e.kind for e in s.events(task_key=key)].count("session.prompt") == 1
    line = retry_until(lambda: got.exists() and got.read_text().strip(),
                       message="the agent reading its prompt")
    assert key in line  # the autonomous prompt names the task


def test_project_dispatcher_keeps_to_its_project(repo, tmp_path, planeai_home, private_tmux):
    """`dispatch run --project planeai` neither judges another project's runs nor waits for
    them; the global maximum still counts them."""
    socket, tmux_tmp = private_tmux
    user_provider(planeai_home, "worker", [
        "/bin/sh", "-c", 'case "$PLANEAI_TASK_KEY" in OTH-1) exit 0;; OTH-*) sleep 60;; '
        "*) planeai task done >/dev/null; sleep 60;; esac", "worker", "{prompt}"])
    other = make_repo(tmp_path / "other")
    with open_store() as s:
        mine, _ = add_project(s, repo)
        theirs, _ = add_project(s, other, name="other", key="OTH")
        own = task_svc.add_task(s, mine, "Mine").key
        ended, running = (task_svc.add_task(s, theirs, t).key for t in ("ended", "running"))
    env = cli_env(tmp_path, socket, tmux_tmp, "worker")
    locs = locations()
    cfg = config_mod.load(user_file=None, env={})
    cfg.data["tmux"]["socket"] = socket
    m = SessionManager(open_store(locs), cfg, locs, env=env, backends={
        "tmux": TmuxBackend(socket, env=env, runtime_dir=locs.runtime_dir)})
    try:
        # the other project's runs, as its own dispatcher left them: one ended unjudged
        for key in (ended, running):
            m.start(task_key=key, agent="worker", backend="tmux", autonomous=True)
        retry_until(lambda: m.observe(ended).status is AgentStatus.EXITED,
                    message="the other project's first run ended")
    finally:
        m.close()
    # one slot left under the global maximum of 3: the other project's live run counts
    r = subprocess.run(planeai_cmd() + ["dispatch", "run", "--project", "planeai",
                                        "--exit-when-idle", "--max-sessions", "2"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert f"completed {own}" in r.stdout and "OTH" not in r.stdout, r.stdout
    with open_store() as s:
        assert s.get_task(own).status is Status.DONE
        # not judged: the other project's exited run waits for its own dispatcher
        assert s.sessions_for_task(ended)[0].outcome is None
        assert s.get_task(ended).status is Status.IN_PROGRESS
        kinds = [e.kind for e in s.events(task_key=ended)]
        assert "dispatch.completed" not in kinds and "dispatch.failed" not in kinds
        assert s.sessions_for_task(running)[0].state.value == "running"


def test_status_tells_a_killed_dispatcher_from_a_live_one(repo, tmp_path, planeai_home,
                                                          private_tmux):
    socket, tmux_tmp = private_tmux
    env = cli_env(tmp_path, socket, tmux_tmp, "shell")
    with open_store() as s:
        add_project(s, repo)
    d = subprocess.Popen(planeai_cmd() + ["dispatch", "run"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        def status() -> dict:
            r = subprocess.run(planeai_cmd() + ["dispatch", "status", "--json"], env=env,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            return json.loads(r.stdout)
        live = retry_until(lambda: status()["leader"], message="the dispatcher leading")
        assert f":{d.pid}:" in live
        d.kill()  # SIGKILL: no release, its lease still runs
        d.wait(timeout=30)
        st = status()
        assert st["leader"] is None and st["dead_leader"] == live
        r = subprocess.run(planeai_cmd() + ["dispatch", "status"], env=env,
                           capture_output=True, text=True, timeout=60)
        assert "none running" in r.stdout and "gone" in r.stdout, r.stdout
    finally:
        if d.poll() is None:
            d.kill()


def test_project_dispatcher_notifies_only_of_its_project(repo, tmp_path, planeai_home,
                                                         private_tmux):
    """Agents in both projects come to need input while `dispatch run --project planeai`
    runs: it tells of its own project's agent only."""
    import signal

    socket, tmux_tmp = private_tmux
    user_provider(planeai_home, "sleeper", ["/bin/sh", "-c", "sleep 60"])
    other = make_repo(tmp_path / "other")
    with open_store() as s:
        mine, _ = add_project(s, repo)
        theirs, _ = add_project(s, other, name="other", key="OTH")
        keys = [task_svc.add_task(s, p, "ask").key for p in (mine, theirs)]
        for key in keys:  # in review: for a person, not for the dispatcher to start
            s.set_status(key, Status.IN_REVIEW)
    env = cli_env(tmp_path, socket, tmux_tmp, "sleeper")
    d = subprocess.Popen(planeai_cmd() + ["dispatch", "run", "--project", "planeai"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    locs = locations()
    cfg = config_mod.load(user_file=None, env={})
    m = SessionManager(open_store(locs), cfg, locs, env=env, backends={
        "tmux": TmuxBackend(socket, env=env, runtime_dir=locs.runtime_dir)})
    try:
        retry_until(lambda: m.store.lease_holder("dispatch"), message="the dispatcher leading")
        for key in reversed(keys):  # by hand, not dispatched; the other project's first
            sid = m.start(task_key=key, agent="sleeper", backend="tmux").id
            m.store.set_agent_status(sid, AgentStatus.NEEDS_INPUT.value)  # as an observer saw
        retry_until(lambda: m.store.kv_get("notify.cursor") == str(m.store.last_event_id()),
                    message="the dispatcher reading every event")
    finally:
        d.send_signal(signal.SIGTERM)
        out, err = d.communicate(timeout=60)
        for key in keys:
            m.stop(key)
        m.close()
    assert f"{keys[0]} needs input" in out, out + err
    assert "OTH" not in out, out


def test_an_agent_that_reported_done_finishes_its_turn(repo, tmp_path, planeai_home,
                                                       private_tmux):
    """It prints for two seconds after `planeai task done`: it gets them (its last line is
    in the scrollback), then it is stopped, with its worktree kept."""
    socket, tmux_tmp = private_tmux
    user_provider(planeai_home, "talker", [
        "/bin/sh", "-c", "planeai task done >/dev/null; i=0; while [ $i -lt 10 ]; do "
        "echo summary line $i; sleep 0.2; i=$((i+1)); done; echo LAST-LINE; sleep 600",
        "talker", "{prompt}"])
    with open_store() as s:
        project, _ = add_project(s, repo)
        key = task_svc.add_task(s, project, "Talk after done").key
    env = cli_env(tmp_path, socket, tmux_tmp, "talker")
    r = subprocess.run(planeai_cmd() + ["dispatch", "run", "--exit-when-idle"], env=env,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and f"completed {key}" in r.stdout, r.stdout + r.stderr
    logs = subprocess.run(planeai_cmd() + ["session", "logs", key], env=env,
                          capture_output=True, text=True, timeout=60).stdout
    assert "summary line 9" in logs and "LAST-LINE" in logs, logs
    with open_store() as s:
        session = s.sessions_for_task(key)[0]
        assert session.state.value == "exited" and session.outcome == "success"
        assert Path(session.worktree).is_dir()
        assert s.get_task(key).status is Status.DONE


def test_a_manual_stop_is_the_user_taking_over(repo, tmp_path, planeai_home, private_tmux):
    """`planeai session stop` on a dispatched run: no failure, no re-dispatch, the task stays
    in progress; the slot is free for the next task. A manually started autonomous session
    holds a slot only while it is live."""
    socket, tmux_tmp = private_tmux
    user_provider(planeai_home, "idler", ["/bin/sh", "-c", "echo working; sleep 600",
                                          "idler", "{prompt}"])
    with open_store() as s:
        project, _ = add_project(s, repo)
        first, second = (task_svc.add_task(s, project, t).key for t in ("first", "second"))
    env = cli_env(tmp_path, socket, tmux_tmp, "idler")

    def cli(*args):
        return subprocess.run(planeai_cmd() + list(args), env=env, capture_output=True,
                              text=True, timeout=120)

    r = cli("session", "start", first, "--autonomous", "--backend", "tmux")
    assert r.returncode == 0, r.stderr
    r = cli("dispatch", "run", "--once", "--max-sessions", "1")
    assert r.returncode == 0 and "dispatched" not in r.stdout, r.stdout  # its slot is taken
    assert cli("session", "stop", first).returncode == 0
    r = cli("dispatch", "run", "--once", "--max-sessions", "1")
    assert r.returncode == 0 and f"dispatched {second}" in r.stdout, r.stdout + r.stderr
    assert f"dispatched {first}" not in r.stdout and "failed" not in r.stdout
    # the dispatched one, stopped by hand while a dispatcher runs: not run again either;
    # with its slot free and nothing ready, that dispatcher is idle and exits
    d = subprocess.Popen(planeai_cmd() + ["dispatch", "run", "--max-sessions", "1",
                                          "--exit-when-idle"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        retry_until(lambda: json.loads(cli("dispatch", "status", "--json").stdout)["leader"],
                    message="the dispatcher leading")
        assert cli("session", "stop", second).returncode == 0
        out, err = d.communicate(timeout=120)
    finally:
        if d.poll() is None:
            d.kill()
    assert d.returncode == 0 and "dispatched" not in out and "failed" not in out, out + err
    with open_store() as s:
        for key in (first, second):
            t = s.get_task(key)
            assert t.status is Status.IN_PROGRESS and t.failures == 0 and not t.held
            assert [x.outcome for x in s.sessions_for_task(key)] == ["stopped"]
            kinds = [e.kind for e in s.events(task_key=key)]
            assert "dispatch.failed" not in kinds and "task.failed" not in kinds
