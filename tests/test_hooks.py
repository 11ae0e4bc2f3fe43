"""Hooks fire for every transition exactly once, whoever caused it: a command with no
dispatcher running, several processes claiming at once. Real CLI processes, real tmux."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import install_echo_agent, planeai_cmd, retry_until

from planeai.services.context import open_store

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


def dump_hook(out: Path) -> str:
    """A hook command appending its PLANEAI_* environment as one JSON line."""
    return (f"{sys.executable} -c \"import json,os;print(json.dumps({{k:v for k,v in "
            f"os.environ.items() if k.startswith('PLANEAI_')}}))\" >> {out}")


def fired(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


def cli(env, *args, cwd=None):
    r = subprocess.run(planeai_cmd() + list(args), env=env, cwd=cwd, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


def test_a_session_started_by_hand_fires_its_hook_with_no_dispatcher(tmux_cli_env, planeai_home,
                                                                   repo, tmp_path):
    out = tmp_path / "hooks.jsonl"
    env = tmux_cli_env(f"[hooks]\nsession_started = [{json.dumps(dump_hook(out))}]\n")
    install_echo_agent(planeai_home / "config" / "providers")
    cli(env, "project", "add", str(repo))
    cli(env, "task", "add", "Hooked", cwd=repo)
    cli(env, "session", "start", "PLA-1", "--provider", "echoer")
    try:
        got = retry_until(lambda: fired(out), message="the session_started hook")
        assert len(got) == 1
        f = got[0]
        assert f["PLANEAI_EVENT"] == "session_started" and f["PLANEAI_TASK_KEY"] == "PLA-1"
        assert f["PLANEAI_SESSION_NAME"] == "PLA-1"
        assert f["PLANEAI_BRANCH"] == "planeai/PLA-1-hooked"
        assert Path(f["PLANEAI_WORKTREE"]).is_dir()
        # the next command finds nothing left to fire: still one
        cli(env, "task", "list")
        with open_store() as s:
            ran = [e for e in s.events(limit=1000) if e.kind == "hook.ran"]
        assert len(ran) == 1 and len(fired(out)) == 1
    finally:
        cli(env, "session", "stop", "PLA-1")


def test_every_transition_fires_once_while_many_processes_claim(tmux_cli_env, planeai_home,
                                                                repo, tmp_path):
    """A dispatcher (claiming in its thread) and eight CLI processes at once moving tasks
    (each claiming when it ends), all with the same hooks: each move fires exactly once."""
    out = tmp_path / "hooks.jsonl"
    env = tmux_cli_env(f"[hooks]\ntask_moved = [{json.dumps(dump_hook(out))}]\n"
                       "[dispatch]\npoll_interval = 0.05\n")
    cli(env, "project", "add", str(repo))
    keys = [cli(env, "task", "add", f"t{i}", "--project", "PLA").strip() for i in range(4)]
    for key in keys:  # not todo: nothing for the dispatcher to start
        cli(env, "task", "move", key, "in_review")
    dispatcher = subprocess.Popen(planeai_cmd() + ["dispatch", "run"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        movers = [subprocess.Popen(
            planeai_cmd() + ["task", "move", keys[i % 4], "done" if (i // 4) % 2 == 0
                             else "in_review"], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE) for i in range(4)]
        for p in movers:
            assert p.wait(timeout=120) == 0
        movers = [subprocess.Popen(planeai_cmd() + ["task", "move", key, "in_review"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                  for key in keys]
        for p in movers:
            assert p.wait(timeout=120) == 0
        with open_store() as s:
            moves = [e.id for e in s.events(limit=100_000) if e.kind == "task.moved"]
        # every move from the start has fired by now or soon, by whichever process claimed it
        retry_until(lambda: sorted(int(f["PLANEAI_EVENT_ID"]) for f in fired(out)) == moves,
                    message="one hook run per move")
    finally:
        dispatcher.terminate()
        dispatcher.communicate(timeout=60)
    ids = Counter(int(f["PLANEAI_EVENT_ID"]) for f in fired(out))
    assert set(ids.values()) == {1}, ids
    with open_store() as s:
        ran = Counter(e.data["event_id"] for e in s.events(limit=100_000)
                      if e.kind == "hook.ran")
    assert set(ran.values()) == {1} and sorted(ran) == moves


def test_hooks_configured_later_do_not_replay_old_history(tmux_cli_env, repo, tmp_path):
    """Moves made while no hooks were configured are claimed by whoever made them and never
    fire later; a transition nobody claimed (its writer died first) that is over an hour old
    is passed over; a move made with hooks configured fires once."""
    from planeai import config as config_mod
    from planeai.core import events as ev
    from planeai.services.hooks import HookRunner

    out = tmp_path / "hooks.jsonl"
    plain = tmux_cli_env()
    cli(plain, "project", "add", str(repo))
    old, new = (cli(plain, "task", "add", t, "--project", "PLA").strip() for t in ("old", "new"))
    cli(plain, "task", "move", old, "in_review")  # no hooks: claimed, fires nothing
    cfg = config_mod.load(user_file=None, env={})
    cfg.data["hooks"]["task_moved"] = [dump_hook(out)]
    with open_store() as s:
        runner = HookRunner(s, cfg)
        assert runner.run_events(runner.claim()) == [] and not out.exists()
        # a move its writer never claimed (killed right after), from two hours ago
        with s.write():
            s.append_event(ev.TASK_MOVED, task_key=old, data={"from": "in_review", "to": "todo"})
            s.conn.execute("UPDATE events SET ts = '2000-01-01T00:00:00.000+00:00' "
                           "WHERE id = (SELECT MAX(id) FROM events)")
        events = runner.claim()
        assert [e.task_key for e in events] == [old]
        assert runner.run_events(events) == [] and not out.exists()  # history, passed over
    hooked = tmux_cli_env(f"[hooks]\ntask_moved = [{json.dumps(dump_hook(out))}]\n")
    cli(hooked, "task", "move", new, "in_review")
    retry_until(lambda: fired(out), message="the hook of the new move")
    assert [f["PLANEAI_TASK_KEY"] for f in fired(out)] == [new]
