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


def test_session_start_local_from_cli_is_refused(run_cli, project):
    code, _, err = run_cli("session", "start", "PLA-1", "--provider", "shell", cwd=project)
    assert code == 1 and "local backend keeps sessions inside the planeai app" in err
    code, out, _ = run_cli("session", "list", "--json")
    assert json.loads(out) == []


def test_session_commands_on_unknown_refs(run_cli, project):
    for args in (["session", "stop", "PLA-9"], ["session", "send", "PLA-9", "hi"],
                 ["session", "logs", "nope"], ["attach", "PLA-9"]):
        code, _, err = run_cli(*args)
        assert code == 1 and "no session" in err, args
    code, _, err = run_cli("session", "start", "PLA-1", "--backend", "tmux",
                           "--provider", "nosuch")
    assert code == 1 and "unknown agent 'nosuch'" in err
