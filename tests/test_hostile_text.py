"""Untrusted text (task titles, descriptions, prompts) reaches processes only as data.

Attacked as a tester would: canary files that must never appear, through the real CLI and a
private tmux server. The rule under test: a plain shell (the `shell` provider, also the
fallback when no agent CLI is installed) is never handed text to run, and a session's
environment carries only its own provider's secrets.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import install_echo_agent, retry_until
from support.cli_errors import one_line_error

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")

SECRETS = {"ANTHROPIC_API_KEY": "sk-ant-canary-1", "OPENAI_API_KEY": "sk-oai-canary-2",
           "JIRA_API_TOKEN": "jira-canary-3", "PLANE_API_KEY": "plane-canary-4"}


@pytest.fixture
def env(tmux_cli_env, private_tmux, planeai_home, repo):
    e = tmux_cli_env('[defaults]\nbackend = "tmux"\nprovider = "shell"\n'
                     '[dispatch]\npoll_interval = 0.1\nmax_retries = 0\n',
                     SHELL="/bin/sh", PS1="$ ", **SECRETS)
    cli_ok(e, "project", "add", str(repo))
    install_echo_agent(planeai_home / "config" / "providers")
    # an agent that needs the Anthropic key, and prints its environment
    (planeai_home / "config" / "providers" / "envdump.toml").write_text(
        'name = "envdump"\nbinary = "sh"\nsecrets = ["ANTHROPIC_API_KEY"]\n'
        'command = ["sh", "-c", "env > \\"$PLANEAI_WORKTREE/env.txt\\"; exec sleep 600"]\n')
    e["_SOCKET"] = private_tmux.socket
    return e


@pytest.fixture
def canary():
    """A short path (titles are limited to 300 characters) that must never appear."""
    d = Path("/tmp") / f"hc-{secrets.token_hex(3)}"
    d.mkdir()
    yield d / "c"
    shutil.rmtree(d, ignore_errors=True)


def cli(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "planeai.cli.main", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def cli_ok(env, *args, cwd=None):
    r = cli(env, *args, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return r


def hostile(canary: Path) -> str:
    return (f"$(touch {canary}) `touch {canary}`; touch {canary} #(touch {canary}) "
            f"#{{session_name}} ' \" \\ -rf")


def test_shell_never_gets_a_prompt_or_an_autonomous_run(env, canary, repo):
    cli_ok(env, "task", "add", hostile(canary), "-d", f"touch {canary}", "--project", "PLA")
    one_line_error(cli(env, "session", "start", "PLA-1", "--provider", "shell", "--autonomous"),
                   "shell is not an agent")
    one_line_error(cli(env, "session", "start", "PLA-1", "--provider", "shell", "--prompt",
                       f"touch {canary}"), "shell is not an agent")
    assert json.loads(cli_ok(env, "session", "list", "--json").stdout) == []
    # by hand, with nothing to run, a shell session still starts
    cli_ok(env, "session", "start", "PLA-1", "--provider", "shell")
    assert not canary.exists()


def test_dispatch_with_only_a_shell_runs_no_task_text(env, canary):
    """No agent CLI configured: the dispatcher's fallback is the shell. It must not paste the
    task into it; the task fails with the reason, for a person to see."""
    cli_ok(env, "task", "add", hostile(canary), "-d", f"touch {canary}\n`touch {canary}`",
           "--project", "PLA")
    r = cli(env, "dispatch", "run", "--once")
    assert "Traceback" not in r.stderr
    task = json.loads(cli_ok(env, "task", "show", "PLA-1", "--json").stdout)
    assert task["status"] == "todo"
    assert "not an agent" in (task.get("last_failure") or ""), task
    assert json.loads(cli_ok(env, "session", "list", "--json").stdout) == []
    assert not canary.exists()


def test_prompt_and_sent_text_reach_the_agent_literally(env, canary, repo):
    text = hostile(canary)
    cli_ok(env, "task", "add", text, "--project", "PLA")
    cli_ok(env, "session", "start", "PLA-1", "--provider", "echoer", "--prompt", text)
    retry_until(lambda: f"prompt: {text}" in cli(env, "session", "logs", "PLA-1").stdout,
                message="the prompt, literally")
    cli_ok(env, "session", "send", "PLA-1", text)
    retry_until(lambda: f"got: {text}" in cli(env, "session", "logs", "PLA-1").stdout,
                message="the sent text, literally")
    s = json.loads(cli_ok(env, "session", "list", "--json").stdout)[0]
    # the branch and the worktree path carry a slug of the title, never its punctuation
    assert s["branch"].startswith("planeai/PLA-1")
    assert all(c.isalnum() or c in "/-" for c in s["branch"]), s["branch"]
    assert all(c.isalnum() or c in "/-_." for c in s["worktree"]), s["worktree"]
    assert not canary.exists()


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(kv.decode().split("=", 1) for kv in raw if b"=" in kv)


def test_sessions_get_only_their_own_providers_secrets(env, tmp_path):
    socket = env["_SOCKET"]
    cli_ok(env, "task", "add", "Shell work", "--project", "PLA")
    cli_ok(env, "task", "add", "Agent work", "--project", "PLA")
    cli_ok(env, "session", "start", "PLA-1", "--provider", "shell")
    cli_ok(env, "session", "start", "PLA-2", "--provider", "envdump")
    sessions = {s["name"]: s for s in json.loads(cli_ok(env, "session", "list", "--json").stdout)}

    # a shell session: no provider key and no tracker token, in tmux or in its process
    shown = subprocess.run(["tmux", "-L", socket, "show-environment", "-t", "=PLA-1"],
                           env=env, capture_output=True, text=True).stdout
    assert not any(v in shown for v in SECRETS.values()), shown
    assert not any(v in _environ(sessions["PLA-1"]["pid"]).values() for v in SECRETS.values())

    # an agent: its own key, nothing else
    dump = Path(sessions["PLA-2"]["worktree"]) / "env.txt"
    retry_until(lambda: dump.exists() and "PLANEAI_TASK_KEY=PLA-2" in dump.read_text(),
                message="the agent's environment")
    got = dump.read_text()
    assert f"ANTHROPIC_API_KEY={SECRETS['ANTHROPIC_API_KEY']}" in got
    for name in ("OPENAI_API_KEY", "JIRA_API_TOKEN", "PLANE_API_KEY"):
        assert SECRETS[name] not in got, name
