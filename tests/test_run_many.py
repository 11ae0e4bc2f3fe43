"""planeai run "prompt" @a @b: one prompt to several agents, each in its own worktree."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from conftest import install_echo_agent, retry_until

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


@pytest.fixture
def env(tmux_cli_env, planeai_home, repo):
    e = tmux_cli_env('[defaults]\nbackend = "tmux"\n')
    subprocess.run([sys.executable, "-m", "planeai.cli.main", "project", "add", str(repo)],
                   env=e, check=True, capture_output=True)
    install_echo_agent(planeai_home / "config" / "providers")
    return e


def cli(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "planeai.cli.main", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_one_prompt_two_agents(env, repo, tmp_path):
    canary = tmp_path / "canary"
    prompt = f"echo hello-$((6*7)) $(touch {canary})"
    r = cli(env, "run", f"{prompt} @echoer", "@echoer", "--json", cwd=repo)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["task"] == "PLA-1" and out["errors"] == []
    names = sorted(s["name"] for s in out["sessions"])
    assert names == ["PLA-1", "PLA-1-2"]
    worktrees = {s["worktree"] for s in out["sessions"]}
    branches = {s["branch"] for s in out["sessions"]}
    assert len(worktrees) == 2 and len(branches) == 2  # side by side, separate branches
    task = json.loads(cli(env, "task", "show", "PLA-1", "--json").stdout)
    assert task["description"] == prompt  # the prompt without its mentions
    for name in names:
        # each agent got the prompt itself, character for character; nothing ran it
        retry_until(lambda: f"prompt: {prompt}" in cli(env, "session", "logs", name).stdout,
                    message=f"the prompt in {name}")
    sessions = json.loads(cli(env, "session", "list", "--json").stdout)
    assert sorted(s["task"] for s in sessions) == ["PLA-1", "PLA-1"]
    assert not canary.exists()


def test_run_for_an_existing_task(env, repo):
    cli(env, "task", "add", "Compare agents", "--project", "PLA")
    r = cli(env, "run", "say one", "@echoer", "--task", "PLA-1", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert "started PLA-1: echoer" in r.stdout


def test_a_shell_is_never_given_the_prompt(env, repo, tmp_path):
    """`shell` is not an agent: a prompt pasted into it would run. planeai refuses before
    anything starts, even when another mention is a real agent."""
    canary = tmp_path / "canary"
    r = cli(env, "run", f"touch {canary}", "@echoer", "@shell", cwd=repo)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "shell is not an agent" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert json.loads(cli(env, "session", "list", "--json").stdout) == []
    assert not canary.exists()


@pytest.mark.parametrize("args, message", [
    (["run", "no agents here"], "name at least one agent"),
    (["run", "fix it", "@claude-opsu"], "did you mean claude-opus?"),
    (["run", "fix it", "@echoer:../../etc"], "is not accepted"),
    (["run", "@echoer"], "prompt is empty"),
])
def test_bad_runs_start_nothing(env, repo, args, message):
    r = cli(env, *args, cwd=repo)
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr
    assert json.loads(cli(env, "task", "list", "--json", cwd=repo).stdout) == []
    assert json.loads(cli(env, "session", "list", "--json").stdout) == []
