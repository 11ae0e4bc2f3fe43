"""The real Claude Code CLI splits its task with `planeai task add`, as the bundled skill
teaches; the dispatcher runs the subtasks and finishes the parent after them."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.support.anthropic_endpoint import ScriptedAnthropic, Text, ToolUse
from tests.support.claude_cli import TASK_IN_PROMPT, for_planeai, planeai, claude_bin, claude_env

pytestmark = [
    pytest.mark.skipif(claude_bin() is None, reason="Claude Code CLI not installed"),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
]

KEY_RE = TASK_IN_PROMPT


def script(body: dict):
    text = json.dumps(body["messages"])
    key, title = KEY_RE.search(text).groups()
    if '"tool_result"' in text:
        return [Text(f"{key} handled.")]
    if title.startswith("Build the feature"):
        # the skill's instructions arrived in the prompt: split the work with planeai
        assert "planeai task add" in text
        cmd = ("planeai task add 'Write the parser' && "
               "planeai task add 'Write the printer' && planeai task done")
        return [Text("Splitting this into two subtasks."), ToolUse(cmd)]
    cmd = (f"echo {key} > {key}.txt && git add {key}.txt && git commit -qm '{key}' && "
           f"planeai task done")
    return [ToolUse(cmd)]


def test_claude_creates_subtasks_that_get_dispatched(repo, tmp_path, planeai_home,
                                                     private_tmux):
    socket, tmux_tmp = private_tmux
    cfg = tmp_path / "planeai.toml"
    cfg.write_text(f'[defaults]\nprovider = "claude"\n[tmux]\nsocket = "{socket}"\n'
                   '[dispatch]\nbackend = "tmux"\nmax_sessions = 2\npoll_interval = 0.3\n')
    worktrees = [planeai_home / "data" / "worktrees" / repo.name / f"PLA-{i}" for i in (1, 2, 3)]
    with ScriptedAnthropic(script) as api:
        env = for_planeai(claude_env(tmp_path / "home", worktrees, api.url), planeai_home,
                          cfg, tmux_tmp)
        planeai(env, "project", "add", str(repo))
        planeai(env, "task", "add", "Build the feature", "--project", "PLA")
        planeai(env, "dispatch", "run", "--exit-when-idle", timeout=600)
        tasks = {t["key"]: t for t in json.loads(
            planeai(env, "task", "list", "--json", "--project", "PLA"))}
        events = json.loads(planeai(env, "events", "--json", "--limit", "10000"))

    assert set(tasks) == {"PLA-1", "PLA-2", "PLA-3"}
    assert (tasks["PLA-2"]["title"], tasks["PLA-3"]["title"]) == ("Write the parser",
                                                                  "Write the printer")
    for k in ("PLA-2", "PLA-3"):
        assert tasks[k]["parent"] == "PLA-1" and tasks[k]["project"] == "planeai"
        assert tasks[k]["status"] == "done"
    assert tasks["PLA-1"]["status"] == "done"
    dispatched = [e["task"] for e in events if e["kind"] == "dispatch.dispatched"]
    # the parent first; its subtasks each once, in whatever order they became ready
    assert dispatched[0] == "PLA-1" and sorted(dispatched) == ["PLA-1", "PLA-2", "PLA-3"]
    done_ids = {e["task"]: e["id"] for e in events
                if e["kind"] == "task.moved" and e["data"]["to"] == "done"}
    assert done_ids["PLA-1"] > max(done_ids["PLA-2"], done_ids["PLA-3"])
    # the skill was installed where Claude Code reads skills, and kept out of the branch
    for i in (2, 3):
        log = subprocess.run(["git", "-C", str(repo), "show", "--stat", "--format=",
                              f"planeai/PLA-{i}-write-the-{'parser' if i == 2 else 'printer'}"],
                             capture_output=True, text=True, check=True).stdout
        assert f"PLA-{i}.txt" in log and ".claude" not in log
