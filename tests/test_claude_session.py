"""The real Claude Code CLI, started by `planeai session start`, driven by a scripted endpoint.

It must reach what the classifier calls idle, go busy while the endpoint streams slowly, and
come back to idle: the whole path (CLI, provider file, worktree, tmux backend, classifier)
against the real agent.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import retry_until
from tests.support.anthropic_endpoint import ScriptedAnthropic, Text
from tests.support.claude_cli import claude_bin, claude_env

pytestmark = [
    pytest.mark.skipif(claude_bin() is None, reason="Claude Code CLI not installed "
                       "(npm install -g @anthropic-ai/claude-code)"),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
]


@pytest.fixture
def cli_env(tmp_path, planeai_home):
    socket = f"pc-{secrets.token_hex(4)}"
    tmpdir = Path("/tmp") / f"pc-{secrets.token_hex(3)}"
    tmpdir.mkdir()
    cfg = tmp_path / "planeai.toml"
    cfg.write_text(f'[tmux]\nsocket = "{socket}"\n[defaults]\nbackend = "tmux"\n')
    yield {"PLANEAI_CONFIG": str(cfg), "TMUX_TMPDIR": str(tmpdir), "socket": socket}
    env = {**os.environ, "TMUX_TMPDIR": str(tmpdir)}
    subprocess.run(["tmux", "-L", socket, "kill-server"], env=env, capture_output=True)
    shutil.rmtree(tmpdir, ignore_errors=True)


def planeai(env: dict, *args: str, cwd: Path | None = None) -> str:
    r = subprocess.run([sys.executable, "-m", "planeai.cli.main", *args], env=env, cwd=cwd,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_claude_session_idle_busy_idle(repo, tmp_path, planeai_home, cli_env):
    worktree = planeai_home / "data" / "worktrees" / repo.name / "PLA-1"
    reply = "Streaming slowly so that the agent stays busy for a while, then done."
    with ScriptedAnthropic([[Text(reply, chunk_delay=0.3, chunks=20, start_delay=1.0)]]) as api:
        env = claude_env(tmp_path / "home", [worktree], api.url)
        env.update({"PLANEAI_HOME": str(planeai_home), "PLANEAI_CONFIG": cli_env["PLANEAI_CONFIG"],
                    "TMUX_TMPDIR": cli_env["TMUX_TMPDIR"],
                    "PATH": str(Path(sys.executable).parent) + os.pathsep + env["PATH"]})
        planeai(env, "project", "add", str(repo))
        planeai(env, "task", "add", "Say something slowly", "--project", "PLA")
        out = planeai(env, "session", "start", "PLA-1", "--provider", "claude-sonnet")
        assert "started PLA-1: claude-sonnet on tmux" in out

        def status() -> str:
            sessions = json.loads(planeai(env, "session", "list", "--json"))
            return sessions[0]["agent_status"]

        retry_until(lambda: status() == "idle", timeout=90, interval=0.3,
                    message="claude at its prompt (idle)")
        planeai(env, "session", "send", "PLA-1", "Please answer slowly.")
        retry_until(lambda: status() == "busy", timeout=60, interval=0.2,
                    message="claude working (busy)")
        retry_until(lambda: status() == "idle" and "then done." in planeai(
            env, "session", "logs", "PLA-1"), timeout=90, interval=0.3,
            message="the reply, then idle again")
        assert len(api.main_turns()) == 1
        assert "--model" in json.loads(planeai(env, "session", "list", "--json"))[0]["argv"]
        events = json.loads(planeai(env, "events", "--task", "PLA-1", "--json"))
        statuses = [e["data"]["to"] for e in events if e["kind"] == "session.status"]
        # the log saw the agent go idle -> busy -> idle
        assert "busy" in statuses and statuses[-1] == "idle"
        assert statuses.index("idle") < statuses.index("busy")
