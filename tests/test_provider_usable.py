"""Providers are usable or refused before they start: a binary that is missing or an agent that
is not logged in holds a dispatched task with the reason (nothing starts) and refuses
`planeai run`; a minimal provider file (name and command) works; a skipped file is named with
its missing key wherever the agent is asked for; "unknown agent" suggests close matches only."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ECHO_AGENT, planeai_cmd
from planeai.providers import load_registry
from planeai.services.provider_check import unusable
from tests.support.codex_cli import codex_bin, reap_codex_processes

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


def cli(env, *args, code=0):
    r = subprocess.run([*planeai_cmd(), *args], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == code, (r.stdout, r.stderr)
    return r


def one_line(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.fixture
def env(tmux_cli_env, tmp_path, user_home, repo):
    """No agent credentials at all: a HOME with nothing in it, no API keys."""
    def make(config: str = ""):
        e = tmux_cli_env(config + '[dispatch]\nbackend = "tmux"\npoll_interval = 0.1\n')
        for k in ("OPENAI_API_KEY", "CODEX_API_KEY", "CODEX_HOME", "ANTHROPIC_API_KEY",
                  "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN"):
            e.pop(k, None)
        cli(e, "project", "add", str(repo), "--key", "PLA")
        return e
    yield make
    reap_codex_processes(user_home)


def _tasks(env) -> dict:
    return {t["key"]: t for t in json.loads(cli(env, "task", "list", "--json").stdout)}


def _kinds(env) -> list[str]:
    return [e["kind"] for e in json.loads(cli(env, "events", "--json", "--limit", "1000").stdout)]


@needs_tmux
@pytest.mark.skipif(codex_bin() is None, reason="Codex CLI not installed")
def test_codex_with_no_login_is_not_dispatched_but_held_with_the_reason(env):
    e = env('[defaults]\nprovider = "codex"\n')
    cli(e, "task", "add", "fix the parser", "--project", "PLA")
    cli(e, "dispatch", "run", "--exit-when-idle")
    task = _tasks(e)["PLA-1"]
    assert task["held"] and task["status"] == "todo"
    assert "codex is not logged in: run `codex login`" in task["last_failure"]
    assert "session.started" not in _kinds(e) and "session.created" not in _kinds(e)
    # `planeai run` refuses it before anything is written
    r = cli(e, "run", "fix the lexer @codex", "--project", "PLA", code=1)
    assert "@codex: codex is not logged in" in one_line(r)
    assert list(_tasks(e)) == ["PLA-1"]
    # `provider check` says the same
    r = cli(e, "provider", "check", "codex", code=1)
    assert "codex is not logged in" in r.stdout


@needs_tmux
def test_missing_binary_of_a_minimal_provider_file_holds_the_task(env, planeai_home):
    d = planeai_home / "config" / "providers"
    d.mkdir(parents=True)
    # a minimal provider file: name and command; binary is the command's first word
    (d / "ghost.toml").write_text('name = "ghost"\ncommand = ["no-such-agent-cli", "{prompt}"]\n')
    (d / "mini.toml").write_text(
        f'name = "mini"\ncommand = ["{sys.executable}", "{ECHO_AGENT}", "{{prompt}}"]\n')
    e = env('[defaults]\nprovider = "ghost"\n')
    shown = json.loads(cli(e, "provider", "show", "mini", "--json").stdout)
    assert shown["binary"] == sys.executable
    cli(e, "provider", "check", "mini")
    cli(e, "task", "add", "fix the parser", "--project", "PLA")
    cli(e, "dispatch", "run", "--exit-when-idle")
    task = _tasks(e)["PLA-1"]
    assert task["held"]
    assert "ghost is not installed: 'no-such-agent-cli' is not on PATH" in task["last_failure"]
    assert "session.created" not in _kinds(e)
    # the minimal provider runs
    r = cli(e, "session", "start", "PLA-1", "--provider", "mini", "--backend", "tmux",
            "--json")
    assert json.loads(r.stdout)["provider"] == "mini"


@needs_tmux
def test_skipped_provider_file_is_named_with_its_missing_key(env, planeai_home):
    d = planeai_home / "config" / "providers"
    d.mkdir(parents=True)
    f = d / "halfdone.toml"
    f.write_text('name = "halfdone"\ndisplay_name = "Half done"\n')
    why = f"provider 'halfdone' was skipped: {f}: missing key 'command'"
    e = env('[defaults]\nprovider = "halfdone"\n')
    cli(e, "task", "add", "fix the parser", "--project", "PLA")
    r = cli(e, "session", "start", "PLA-1", "--provider", "halfdone", code=1)
    assert why in one_line(r)
    r = cli(e, "run", "fix it @halfdone", "--project", "PLA", code=1)
    assert why in one_line(r)
    cli(e, "dispatch", "run", "--exit-when-idle")
    assert why in _tasks(e)["PLA-1"]["last_failure"]


def test_unknown_agent_suggests_close_matches_not_the_whole_list(env):
    e = env()
    cli(e, "task", "add", "fix the parser", "--project", "PLA")
    line = one_line(cli(e, "session", "start", "PLA-1", "--provider", "claude-opsu", code=1))
    assert "did you mean claude-opus?" in line
    assert "gemini" not in line and "known:" not in line and len(line) < 200
    line = one_line(cli(e, "session", "start", "PLA-1", "--provider", "zzzzzz", code=1))
    assert "unknown agent 'zzzzzz'" in line and "planeai provider list" in line
    assert "gemini" not in line


def test_the_same_check_for_every_caller(tmp_path):
    """provider_check.unusable: binary first, then a secret, then the declared login check."""
    root = Path(__file__).resolve().parent.parent
    reg = load_registry([root / "providers"])
    claude = reg.get("claude")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "claude"
    # a stand-in `claude` whose `auth status` answers like the real one (exit 0 / 1)
    stub.write_text("#!/bin/sh\n[ -e \"$HOME/logged-in\" ]\n")
    stub.chmod(0o755)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    assert unusable(claude, env) == ("claude is not logged in: run `claude auth login` or set "
                                     "ANTHROPIC_API_KEY")
    assert unusable(claude, {**env, "ANTHROPIC_API_KEY": "sk"}) is None
    (tmp_path / "logged-in").touch()
    assert unusable(claude, env) is None
    assert unusable(claude, {"PATH": str(tmp_path / "nowhere"), "HOME": str(tmp_path)}) == (
        "claude is not installed: 'claude' is not on PATH "
        "(npm install -g @anthropic-ai/claude-code)")
