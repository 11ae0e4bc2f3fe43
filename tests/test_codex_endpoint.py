"""The REAL Codex CLI (@openai/codex), driven offline by the scripted Responses endpoint."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.capture_claude_screens import classify, load_patterns
from tests.support.capture_codex_screens import SCREENS
from tests.support.claude_cli import PrivateTmux, wait_for
from tests.support.codex_cli import codex_argv, codex_bin, codex_env, reap_codex_processes
from tests.support.openai_endpoint import ScriptedOpenAI, Text, ToolUse

SCREEN_DIR = Path(__file__).parent / "data" / "screens" / "codex"
PATTERNS = SCREEN_DIR / "status_patterns.toml"

needs_codex = pytest.mark.skipif(codex_bin() is None, reason="Codex CLI `codex` not on PATH (npm install -g @openai/codex)")
needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    p = tmp_path / "project"
    p.mkdir()
    return p


@needs_codex
def test_exec_prints_scripted_text(tmp_path: Path, project: Path):
    with ScriptedOpenAI([[Text("Hello from the scripted endpoint!")]]) as api:
        env = codex_env(tmp_path / "home", [project], api.url)
        proc = subprocess.run(["codex", "exec", "--skip-git-repo-check", "say hi"], cwd=project, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Hello from the scripted endpoint!"
    assert len(api.main_turns()) == 1


@needs_codex
def test_exec_runs_scripted_command(tmp_path: Path, project: Path):
    target = tmp_path / "made-by-agent"
    with ScriptedOpenAI([[Text("Creating it."), ToolUse(f"touch {target}")], [Text("Created the file.")]]) as api:
        env = codex_env(tmp_path / "home", [project], api.url)
        proc = subprocess.run(
            ["codex", "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", "make the file"],
            cwd=project, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    assert target.exists()
    assert "Created the file." in proc.stdout
    turns = api.main_turns()
    assert len(turns) == 2
    assert turns[1]["input"][-1]["type"] == "function_call_output"


@needs_codex
@needs_tmux
def test_interactive_prompt_busy_then_idle(tmp_path: Path, project: Path):
    patterns = load_patterns(PATTERNS)
    with ScriptedOpenAI([[Text("A reply that was slow to start.", start_delay=4)]]) as api:
        env = codex_env(tmp_path / "home", [project], api.url)
        tmux = PrivateTmux(tmp_path / "tmux", env)
        try:
            tmux.new_session("agent", codex_argv(), cwd=project, width=120, height=40)
            wait_for(lambda: classify(tmux.capture("agent"), patterns) == "idle", timeout=60, message="the prompt")
            tmux.send_text("agent", "Say something.")
            wait_for(lambda: "something." in tmux.capture("agent"), timeout=15, message="the typed message")
            tmux.send_keys("agent", "Enter")
            wait_for(lambda: classify(tmux.capture("agent"), patterns) == "busy", timeout=30, message="Working")
            wait_for(lambda: classify(tmux.capture("agent"), patterns) == "idle" and "slow to start." in tmux.capture("agent"),
                     timeout=60, message="the reply and the prompt again")
        finally:
            tmux.kill()
            assert not reap_codex_processes(tmp_path / "home"), "codex left processes behind"
    assert len(api.main_turns()) == 1  # the title request (no tools) did not consume the script


@pytest.mark.parametrize("name", SCREENS)
def test_captured_screen_classifies(name: str):
    screen = (SCREEN_DIR / f"{name}.txt").read_text()
    assert (SCREEN_DIR / f"{name}.ansi").exists()
    patterns = load_patterns(PATTERNS)
    # a capture is named after its status, with an optional suffix (idle_after,
    # needs_input_signin)
    want = next(st for st in ("needs_input", "busy", "idle") if name.startswith(st))
    assert classify(screen, patterns) == want
    for status, pats in patterns.items():
        if status != want:
            assert not [p.pattern for p in pats if p.search(screen)], f"{status} pattern matches {name}"
