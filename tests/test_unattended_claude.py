"""Unattended runs with the real Claude Code CLI, in a HOME as a user's is after using Claude
once elsewhere: onboarding done, the API key approved, no trust for planeai's worktrees and
bypass mode never accepted. `planeai dispatch run --exit-when-idle` on three yolo tasks must
reach done for all three with nobody at the keyboard: planeai answers Claude's bypass-mode
consent and its "trust this folder?" on screen (providers/claude.toml [[dialogs]]), for a
retry's new worktree too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support.anthropic_endpoint import ScriptedAnthropic, Text, ToolUse
from tests.support.claude_cli import TASK_IN_PROMPT, planeai, claude_bin, claude_env
from tests.support.polling import retry_until

pytestmark = [
    pytest.mark.skipif(claude_bin() is None, reason="Claude Code CLI not installed"),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
]

KEY_RE = TASK_IN_PROMPT


def test_three_yolo_tasks_reach_done_through_first_run_dialogs(repo, tmp_path, planeai_home,
                                                               private_tmux):
    socket, tmux_tmp = private_tmux
    first_turns: dict[str, int] = {}
    lock = threading.Lock()

    def agent(body: dict):
        text = json.dumps(body["messages"])
        key = KEY_RE.search(text).group(1)
        if '"tool_result"' in text:
            return [Text(f"{key} is done.")]
        with lock:
            first_turns[key] = first_turns.get(key, 0) + 1
            attempt = first_turns[key]
        if key == "PLA-3" and attempt == 1:
            # the first run of PLA-3 dies (its agent is killed): the retry gets a new worktree
            return [Text("Oops."), ToolUse("kill -9 $PPID", description="Crash")]
        cmd = (f"echo {key} > {key}.txt && git add {key}.txt && "
               f"git commit -qm '{key}: add {key}.txt' && planeai task done {key}")
        return [Text(f"Working on {key}."), ToolUse(cmd, description=f"Do {key}")]

    cfg = tmp_path / "planeai.toml"
    cfg.write_text(f'[defaults]\nprovider = "claude"\n[tmux]\nsocket = "{socket}"\n'
                   '[dispatch]\nbackend = "tmux"\nmax_sessions = 3\npoll_interval = 0.2\n'
                   "yolo = true\nmax_retries = 2\n")
    home = tmp_path / "home"
    with ScriptedAnthropic(agent) as api:
        # no project trusted, bypass mode never accepted
        env = claude_env(home, [], api.url, accept_bypass=False)
        env.update({"PLANEAI_HOME": str(planeai_home), "PLANEAI_CONFIG": str(cfg),
                    "TMUX_TMPDIR": str(tmux_tmp),
                    "PATH": str(Path(sys.executable).parent) + os.pathsep + env["PATH"]})
        if os.geteuid() == 0:
            # what some containers export: Claude Code accepts only "1" (else it refuses
            # --dangerously-skip-permissions as root and exits at once)
            env["IS_SANDBOX"] = "yes"
        for k, v in os.environ.items():
            if k.startswith("GIT_"):
                env[k] = v
        before = json.loads((home / ".claude.json").read_text())
        assert not before["projects"] and "bypassPermissionsModeAccepted" not in before
        planeai(env, "project", "add", str(repo))
        for title in ("one", "two", "three"):
            planeai(env, "task", "add", title, "--project", "PLA")
        planeai(env, "dispatch", "run", "--exit-when-idle", timeout=240)
        events = json.loads(planeai(env, "events", "--json", "--limit", "10000"))
        tasks = json.loads(planeai(env, "task", "list", "--json", "--project", "PLA"))
        sessions = json.loads(planeai(env, "session", "list", "--json", "--all"))

    assert {t["key"]: t["status"] for t in tasks} == {"PLA-1": "done", "PLA-2": "done",
                                                      "PLA-3": "done"}
    # PLA-3 ran twice, each time in a worktree of its own
    pla3 = [s for s in sessions if s["task"] == "PLA-3"]
    assert len(pla3) == 2 and len({s["worktree"] for s in pla3}) == 2
    failed = [e for e in events if e["kind"] == "dispatch.failed"]
    assert [e["task"] for e in failed] == ["PLA-3"]
    # each agent committed in its worktree
    for key in ("PLA-1", "PLA-2", "PLA-3"):
        branches = subprocess.run(
            ["git", "-C", str(repo), "branch", "--list", f"planeai/{key}-*",
             "--format=%(refname:short)"], capture_output=True, text=True,
            check=True).stdout.split()
        subjects = [subprocess.run(["git", "-C", str(repo), "log", "--format=%s",
                                    f"main..{b}"], capture_output=True, text=True,
                                   check=True).stdout.split("\n")[0] for b in branches]
        assert f"{key}: add {key}.txt" in subjects
    # nobody typed anything: what was answered is in the log, per session
    assert not [e for e in events if e["kind"] == "session.prompt"]
    answered = [(e["session"], e["data"]["dialog"]) for e in events
                if e["kind"] == "session.dialog_answered"]
    # the first sessions start before anything is trusted or accepted (one that starts after
    # another's answer was saved is not asked: Claude keeps the trust per repository)
    assert {"trust-folder", "bypass-consent"} <= {name for _, name in answered}
    ids = {s["id"] for s in sessions}
    assert {sid for sid, _ in answered} <= ids
    # the dialogs never surfaced as needs input
    assert not [e for e in events if e["kind"] == "session.status"
                and e["data"].get("to") == "needs_input"]
    # planeai wrote nothing into Claude's config: Claude recorded the answers itself, the
    # trust under the repository (which is why the retry's new worktree was not asked again)
    after = json.loads((home / ".claude.json").read_text())
    assert {p for p, v in after["projects"].items() if v.get("hasTrustDialogAccepted")} == \
        {str(repo.resolve())}
    settings = json.loads((home / ".claude" / "settings.json").read_text())
    assert settings.get("skipDangerousModePermissionPrompt") is True


def test_planeai_run_sees_its_agents_past_their_first_run_dialogs(repo, tmp_path, planeai_home,
                                                                  private_tmux):
    """`planeai run "..." @claude` exits right after starting; it watches its sessions until
    each is past Claude's "trust this folder?" (answered: a worktree planeai made), so the
    prompt is worked on with nobody observing afterwards."""
    socket, tmux_tmp = private_tmux
    got: list[str] = []

    def agent(body: dict):
        got.append(json.dumps(body["messages"]))
        return [Text("Hello from the agent.")]

    cfg = tmp_path / "planeai.toml"
    cfg.write_text(f'[defaults]\nbackend = "tmux"\n[tmux]\nsocket = "{socket}"\n')
    with ScriptedAnthropic(agent) as api:
        env = claude_env(tmp_path / "home", [], api.url)  # no folder trusted
        env.update({"PLANEAI_HOME": str(planeai_home), "PLANEAI_CONFIG": str(cfg),
                    "TMUX_TMPDIR": str(tmux_tmp),
                    "PATH": str(Path(sys.executable).parent) + os.pathsep + env["PATH"]})
        planeai(env, "project", "add", str(repo))
        out = json.loads(planeai(env, "run", "say the magic word", "@claude", "--project",
                                 "PLA", "--json", timeout=180))
        [s] = out["sessions"]
        assert s["agent_status"] in ("busy", "idle"), s
        events = json.loads(planeai(env, "events", "--json", "--limit", "1000"))
        assert any(e["kind"] == "session.dialog_answered" for e in events)
        # the prompt reached the model although nothing observes the session any more
        retry_until(lambda: any("say the magic word" in g for g in got),
                    message="the prompt at the model")
        planeai(env, "session", "stop", s["name"])
