"""The real Claude Code CLI in planeai's sandbox: dispatched with yolo, driven by the scripted
model, it commits in its worktree, adds a subtask that appears on the host's board (through
the session's inbox) and reports done; its container is gone afterwards."""

from __future__ import annotations

import json
import subprocess

import pytest

from support.anthropic_endpoint import ScriptedAnthropic, Text, ToolUse
from support.claude_cli import TASK_IN_PROMPT, for_planeai, planeai, claude_bin, claude_env
from support.docker_sandbox import BASE_IMAGE, containers, engine_problem, ensure_image

_problem = engine_problem()
pytestmark = [
    pytest.mark.skipif(claude_bin() is None, reason="Claude Code CLI not installed"),
    pytest.mark.skipif(_problem is not None, reason=_problem or ""),
]

def script(body: dict):
    text = json.dumps(body["messages"])
    key, _title = TASK_IN_PROMPT.search(text).groups()
    if '"tool_result"' in text:
        return [Text(f"{key} handled.")]
    follow_up = (f"planeai task add 'Follow-up found in the box' --parent {key} && "
                 if key == "PLA-1" else "")
    cmd = (f"echo boxed > {key}.txt && git add {key}.txt && git commit -qm 'boxed {key}' && "
           f"{follow_up}planeai task done {key}")
    return [Text("Working in the sandbox."), ToolUse(cmd)]


def test_claude_in_the_sandbox_commits_adds_a_subtask_and_reports_done(
        repo, tmp_path, planeai_home, private_tmux):
    ensure_image("base", BASE_IMAGE)
    ensure_image("claude", "planeai-claude:latest")
    socket, tmux_tmp = private_tmux
    cfg = tmp_path / "planeai.toml"
    # network host: the scripted model listens on this machine's 127.0.0.1
    cfg.write_text(f'[defaults]\nprovider = "claude"\n[tmux]\nsocket = "{socket}"\n'
                   '[dispatch]\nbackend = "tmux"\nmax_sessions = 1\npoll_interval = 0.3\n'
                   '[sandbox]\nenabled = true\nnetwork = "host"\n'
                   # config would run it on the host; made from inside a sandbox, it is not
                   '[sandbox.tasks]\n"PLA-2" = false\n')
    worktrees = [planeai_home / "data" / "worktrees" / repo.name / f"PLA-{i}" for i in (1, 2)]
    with ScriptedAnthropic(script) as api:
        env = for_planeai(claude_env(tmp_path / "home", worktrees, api.url), planeai_home,
                          cfg, tmux_tmp)
        planeai(env, "project", "add", str(repo))
        planeai(env, "task", "add", "Box the feature", "--project", "PLA")
        planeai(env, "dispatch", "run", "--exit-when-idle", "--project", "PLA", timeout=600)
        tasks = {t["key"]: t for t in json.loads(
            planeai(env, "task", "list", "--json", "--project", "PLA"))}
        events = json.loads(planeai(env, "events", "--json", "--limit", "10000"))
        sessions = {s["name"]: s for s in json.loads(planeai(env, "session", "list", "--json"))}
        # its tokens were read from its transcript in the provider's sandbox state dir
        stats = json.loads(planeai(env, "stats", "--by", "session", "--json"))

    assert tasks["PLA-1"]["status"] == "done" and tasks["PLA-2"]["status"] == "done"
    assert tasks["PLA-2"]["title"] == "Follow-up found in the box"
    assert tasks["PLA-2"]["parent"] == "PLA-1"
    started = [e for e in events if e["kind"] == "session.started" and e["task"] == "PLA-1"]
    assert started and started[0]["data"].get("sandbox") is True
    # the subtask an agent made in a sandbox ran in one too, whatever config says for it
    assert tasks["PLA-2"]["sandbox"] is True
    started2 = [e for e in events if e["kind"] == "session.started" and e["task"] == "PLA-2"]
    assert started2 and started2[0]["data"].get("sandbox") is True
    # the commit is on PLA-1's branch in the host repo
    s1 = sessions["PLA-1"]
    log = subprocess.run(["git", "-C", str(repo), "log", "--format=%s", s1["branch"]],
                         capture_output=True, text=True, check=True).stdout
    assert log.splitlines()[0] == "boxed PLA-1"
    boxed = next(g for g in stats["groups"] if g["key"] == "PLA-1")
    assert boxed["tokens"] and boxed["tokens"]["output"] > 0, boxed
    # the sandbox's containers are gone once their runs ended
    assert containers(f"planeai.session={s1['id']}") == []
