"""planeai provider ... and session ... through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def project(run_cli, repo: Path) -> Path:
    assert run_cli("project", "add", str(repo))[0] == 0
    assert run_cli("task", "add", "a task", cwd=repo)[0] == 0
    return repo


def test_provider_list_show(run_cli):
    code, out, _ = run_cli("provider", "list", "--json")
    names = {p["name"]: p for p in json.loads(out)}
    assert {"claude", "codex", "gemini", "kiro", "copilot", "aider", "opencode",
            "shell"} <= set(names)
    assert {"opus", "sonnet", "haiku"} <= set(names["claude"]["variants"])
    assert {"pro", "flash"} <= set(names["gemini"]["variants"])
    code, out, _ = run_cli("provider", "show", "claude-opus", "--json")
    shown = json.loads(out)
    assert shown["variant"] == "opus" and shown["variant_args"] == ["--model", "opus"]
    assert shown["yolo_flag"] == ["--dangerously-skip-permissions"]
    code, out, _ = run_cli("provider", "show", "gemini-flash")
    assert code == 0 and "gemini-flash" in out


def test_provider_check(run_cli):
    code, out, _ = run_cli("provider", "check", "shell", "--json")
    r = json.loads(out)[0]
    assert code == 0 and r["ok"] and r["binary"]
    code, out, _ = run_cli("provider", "check", "--json")
    assert code == 0 and len(json.loads(out)) >= 8


def test_unknown_provider_suggests(run_cli):
    code, _, err = run_cli("provider", "show", "claude-opsu")
    assert code == 1 and "did you mean claude-opus?" in err
    code, _, err = run_cli("provider", "show", "gemeni")
    assert code == 1 and "did you mean gemini?" in err


def test_user_provider_overrides_bundled_and_bad_file_is_reported(run_cli, planeai_home):
    d = planeai_home / "config" / "providers"
    d.mkdir(parents=True)
    (d / "shell.toml").write_text('name = "shell"\ndisplay_name = "My Shell"\nbinary = "sh"\n'
                                  'command = ["/bin/sh"]\n')
    (d / "broken.toml").write_text('name = "broken"\nbinary = "x"\ncommand = ["x", "{nope}"]\n')
    code, out, err = run_cli("provider", "list", "--json")
    shell = [p for p in json.loads(out) if p["name"] == "shell"][0]
    assert shell["display_name"] == "My Shell"
    assert "broken.toml: command: unknown placeholder {nope}" in err


def test_session_start_local_asked_for_by_name_is_refused(run_cli, project):
    code, _, err = run_cli("session", "start", "PLA-1", "--provider", "shell",
                           "--backend", "local", cwd=project)
    assert code == 1 and "local backend keeps sessions inside the planeai app" in err
    assert "--backend tmux" in err
    code, out, _ = run_cli("session", "list", "--json")
    assert json.loads(out) == []


def test_cli_with_no_flags_starts_on_a_backend_that_outlives_it(tmux_cli_env, planeai_home,
                                                                 repo):
    """defaults.backend is local (the embedded default): `session start` and `run` from the
    CLI use tmux instead and say so, rather than fail."""
    import subprocess
    import sys

    from conftest import install_echo_agent

    env = tmux_cli_env()

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "planeai.cli.main", *args], env=env,
                              cwd=repo, capture_output=True, text=True, timeout=120)

    assert cli("project", "add", str(repo)).returncode == 0
    install_echo_agent(planeai_home / "config" / "providers")
    assert cli("task", "add", "one").returncode == 0
    r = cli("session", "start", "PLA-1", "--provider", "echoer")
    assert r.returncode == 0, r.stderr
    assert "started PLA-1: echoer on tmux" in r.stdout
    assert "using the tmux backend" in r.stderr and "defaults.backend" in r.stderr
    r = cli("run", "say hi @echoer")
    assert r.returncode == 0 and "started PLA-2: echoer" in r.stdout, r.stderr
    listed = json.loads(cli("session", "list", "--json").stdout)
    assert {(s["task"], s["backend"], s["state"]) for s in listed} == {
        ("PLA-1", "tmux", "running"), ("PLA-2", "tmux", "running")}
    for key in ("PLA-1", "PLA-2"):
        assert cli("session", "stop", key).returncode == 0


def test_input_is_checked_before_the_backend(run_cli, project):
    """A wrong mention or task is named even where no backend could run (local asked for)."""
    code, _, err = run_cli("run", "hi @nosuchagent", "--backend", "local", cwd=project)
    assert code == 1 and "nosuchagent" in err and "backend" not in err, err
    code, _, err = run_cli("session", "start", "PLA-77", "--backend", "local", cwd=project)
    assert code == 1 and "PLA-77" in err and "backend" not in err, err
    code, _, err = run_cli("session", "start", "PLA-1", "--provider", "nosuch",
                           "--backend", "local", cwd=project)
    assert code == 1 and "unknown agent 'nosuch'" in err, err


def test_session_commands_on_unknown_refs(run_cli, project):
    for args in (["session", "stop", "PLA-9"], ["session", "send", "PLA-9", "hi"],
                 ["session", "logs", "nope"], ["attach", "PLA-9"]):
        code, _, err = run_cli(*args)
        assert code == 1 and "no session" in err, args
    code, _, err = run_cli("session", "start", "PLA-1", "--backend", "tmux",
                           "--provider", "nosuch")
    assert code == 1 and "unknown agent 'nosuch'" in err


def test_session_start_says_what_it_is_doing_on_a_terminal_and_nothing_in_a_pipe(
        repo, tmux_cli_env):
    """A worktree on a big repo takes seconds: a person at a terminal is told it is being
    made; a script reading the output gets exactly what it got before."""
    import os
    import pty
    import subprocess

    from conftest import planeai_cmd

    env = tmux_cli_env('[defaults]\nbackend = "tmux"\nprovider = "shell"\n')
    for args in (["project", "add", str(repo)], ["task", "add", "Slow one", "--project", "PLA"],
                 ["task", "add", "Piped one", "--project", "PLA"]):
        assert subprocess.run(planeai_cmd() + args, env=env, capture_output=True).returncode == 0
    leader, follower = pty.openpty()
    try:
        cp = subprocess.run(planeai_cmd() + ["session", "start", "PLA-1"], env=env,
                            stdout=subprocess.PIPE, stderr=follower, timeout=60)
        os.close(follower)
        err = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
    finally:
        os.close(leader)
    assert cp.returncode == 0
    assert b"planeai: making the worktree of PLA-1 (branch planeai/PLA-1-slow-one) ..." in err
    piped = subprocess.run(planeai_cmd() + ["session", "start", "PLA-2"], env=env,
                           capture_output=True, timeout=60)
    assert piped.returncode == 0 and piped.stderr == b""
    for key in ("PLA-1", "PLA-2"):
        subprocess.run(planeai_cmd() + ["session", "stop", key], env=env, capture_output=True)
