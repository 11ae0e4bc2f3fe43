"""Auto-dispatch end to end with the real Claude Code CLI and a scripted model endpoint.

Five tasks with priorities and a blocker chain, `planeai dispatch run` with two slots: each
agent (the scripted model tells the real CLI what to run) writes a file, commits it on its
branch and runs `planeai task done`. Order, slots, blockers, branches and hooks are checked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.anthropic_endpoint import ScriptedAnthropic, Text, ToolUse
from tests.support.claude_cli import TASK_IN_PROMPT, planeai, claude_bin, claude_env

pytestmark = [
    pytest.mark.skipif(claude_bin() is None, reason="Claude Code CLI not installed"),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
]

KEY_RE = TASK_IN_PROMPT


def agent_script(body: dict):
    """One agent turn: first run the task's work as a Bash tool call, then say done."""
    text = json.dumps(body["messages"])
    key = KEY_RE.search(text).group(1)
    if '"tool_result"' in text:
        return [Text(f"{key} is done.")]
    cmd = (f"echo {key} > {key}.txt && git add {key}.txt && "
           f"git commit -qm '{key}: add {key}.txt' && planeai task done {key}")
    return [Text(f"Working on {key}."), ToolUse(cmd, description=f"Do {key}")]


def test_five_tasks_two_slots_real_claude(repo, tmp_path, planeai_home, private_tmux):
    socket, tmux_tmp = private_tmux
    hook_log = tmp_path / "hooks.jsonl"
    dump = (f"{sys.executable} -c \"import json,os;print(json.dumps({{k:v for k,v in "
            f"os.environ.items() if k.startswith('PLANEAI_')}}))\" >> {hook_log}")
    cfg = tmp_path / "planeai.toml"
    cfg.write_text(
        f'[defaults]\nprovider = "claude"\n[tmux]\nsocket = "{socket}"\n'
        '[dispatch]\nbackend = "tmux"\nmax_sessions = 2\npoll_interval = 0.3\n'
        f"[hooks]\ntask_dispatched = [{json.dumps(dump)}]\n"
        f"session_started = [{json.dumps(dump)}]\ncompleted = [{json.dumps(dump)}]\n")
    worktrees = [planeai_home / "data" / "worktrees" / repo.name / f"PLA-{i}"
                 for i in range(1, 6)]
    with ScriptedAnthropic(agent_script) as api:
        env = claude_env(tmp_path / "home", worktrees, api.url)
        env.update({"PLANEAI_HOME": str(planeai_home), "PLANEAI_CONFIG": str(cfg),
                    "TMUX_TMPDIR": str(tmux_tmp),
                    "PATH": str(Path(sys.executable).parent) + os.pathsep + env["PATH"]})
        for k, v in os.environ.items():
            if k.startswith("GIT_"):
                env[k] = v
        planeai(env, "project", "add", str(repo))
        # PLA-1..5: priorities 1, 5, 3, 9, 2; PLA-4 (P9) waits for PLA-5 (P2)
        for title, prio in (("one", 1), ("two", 5), ("three", 3), ("four", 9),
                            ("five", 2)):
            planeai(env, "task", "add", title, "-p", str(prio), "--project", "PLA")
        planeai(env, "task", "block", "PLA-4", "--by", "PLA-5")
        out = planeai(env, "dispatch", "run", "--exit-when-idle", timeout=600)
        events = json.loads(planeai(env, "events", "--json", "--limit", "10000"))
        tasks = json.loads(planeai(env, "task", "list", "--json", "--project", "PLA"))

    assert {t["key"]: t["status"] for t in tasks} == {f"PLA-{i}": "done" for i in range(1, 6)}
    order = [e["task"] for e in events if e["kind"] == "dispatch.dispatched"]
    assert sorted(order) == [f"PLA-{i}" for i in range(1, 6)]   # each exactly once
    # by priority among ready tasks: PLA-2 (5), PLA-3 (3) first; PLA-4 (9) only after PLA-5
    assert order[:2] == ["PLA-2", "PLA-3"]
    done_at = {e["task"]: e["id"] for e in events
               if e["kind"] == "task.moved" and e["data"]["to"] == "done"}
    dispatched_at = {e["task"]: e["id"] for e in events if e["kind"] == "dispatch.dispatched"}
    assert done_at["PLA-5"] < dispatched_at["PLA-4"]
    # never more than two at once
    running, top = 0, 0
    for e in events:
        if e["kind"] == "session.started":
            running += 1
        elif e["kind"] == "dispatch.completed":
            running -= 1
        top = max(top, running)
    assert top <= 2
    # the agents really did the work: each branch holds its commit and file
    for i in range(1, 6):
        key = f"PLA-{i}"
        branch = subprocess.run(["git", "-C", str(repo), "branch", "--list", f"planeai/{key}-*",
                                 "--format=%(refname:short)"], capture_output=True, text=True,
                                check=True).stdout.strip()
        subjects = subprocess.run(["git", "-C", str(repo), "log", "--format=%s",
                                   f"main..{branch}"], capture_output=True, text=True,
                                  check=True).stdout.splitlines()
        if key == "PLA-4":  # it started from its done blocker's work, not merged into main
            assert subjects == ["PLA-4: add PLA-4.txt",
                                "PLA-4: start from PLA-5 (planeai/PLA-5-five)",
                                "PLA-5: add PLA-5.txt"]
        else:
            assert subjects == [f"{key}: add {key}.txt"]
        content = subprocess.run(["git", "-C", str(repo), "show", f"{branch}:{key}.txt"],
                                 capture_output=True, text=True, check=True).stdout
        assert content == f"{key}\n"
    # each completion was reported by the agent itself (planeai task done)
    how = [e["data"]["how"] for e in events if e["kind"] == "dispatch.completed"]
    assert how == ["reported"] * 5
    # hooks fired once per transition, with the right env
    fired = [json.loads(line) for line in hook_log.read_text().splitlines()]
    for name in ("task_dispatched", "session_started", "completed"):
        keys = sorted(f["PLANEAI_TASK_KEY"] for f in fired if f["PLANEAI_EVENT"] == name)
        assert keys == [f"PLA-{i}" for i in range(1, 6)], name
    started = [f for f in fired if f["PLANEAI_EVENT"] == "session_started"]
    assert all(f["PLANEAI_BRANCH"].startswith(f"planeai/{f['PLANEAI_TASK_KEY']}-")
               and f["PLANEAI_WORKTREE"].endswith(f["PLANEAI_TASK_KEY"]) for f in started)
    assert "dispatched PLA-2" in out and "completed PLA-4" in out
