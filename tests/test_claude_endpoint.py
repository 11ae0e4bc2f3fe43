"""The REAL Claude Code CLI, driven offline by the scripted Anthropic endpoint.

Also checks the endpoint on its own (plain HTTP, no CLI) and the status regexes against the
captured screens in tests/data/screens/claude/ (no CLI needed for those either).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.support.anthropic_endpoint import ScriptedAnthropic, Text, ToolUse
from tests.support.capture_claude_screens import SCREENS, classify, expected_status, load_patterns
from tests.support.claude_cli import PrivateTmux, claude_bin, claude_env, wait_for

SCREEN_DIR = Path(__file__).parent / "data" / "screens" / "claude"

needs_claude = pytest.mark.skipif(
    claude_bin() is None,
    reason="Claude Code CLI `claude` not on PATH (npm install -g @anthropic-ai/claude-code)",
)
needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


# -- the endpoint alone ----------------------------------------------------------------------


def _post(url: str, body: dict) -> tuple[str, str]:
    req = urllib.request.Request(
        url + "/v1/messages", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.headers.get("Content-Type", ""), resp.read().decode()


def _events(sse: str) -> list[dict]:
    return [json.loads(line[6:]) for line in sse.splitlines() if line.startswith("data: ")]


def test_endpoint_streams_script_and_answers_side_requests():
    tool_turn = [Text("Running it."), ToolUse("echo hi", description="Say hi")]
    with ScriptedAnthropic([tool_turn, [Text("abcdef", chunks=3)]]) as api:
        main = {"model": "m", "max_tokens": 100, "stream": True, "tools": [{"name": "Bash"}],
                "messages": [{"role": "user", "content": "go"}]}
        side = {"model": "small", "max_tokens": 50, "messages": [{"role": "user", "content": "title?"}]}

        ctype, body = _post(api.url, side)  # a side request does not consume the script
        assert ctype == "application/json"
        assert json.loads(body)["content"][0]["type"] == "text"

        ctype, body = _post(api.url, main)
        assert ctype.startswith("text/event-stream")
        events = _events(body)
        assert [e["type"] for e in events][0] == "message_start"
        assert events[-1]["type"] == "message_stop"
        starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
        assert [b["type"] for b in starts] == ["text", "tool_use"]
        assert starts[1]["name"] == "Bash"
        partial = [e["delta"]["partial_json"] for e in events if e.get("delta", {}).get("type") == "input_json_delta"]
        assert json.loads("".join(partial)) == {"command": "echo hi", "description": "Say hi"}
        assert [e for e in events if e["type"] == "message_delta"][0]["delta"]["stop_reason"] == "tool_use"

        events = _events(_post(api.url, main)[1])
        texts = [e["delta"]["text"] for e in events if e.get("delta", {}).get("type") == "text_delta"]
        assert texts == ["ab", "cd", "ef"]
        assert [e for e in events if e["type"] == "message_delta"][0]["delta"]["stop_reason"] == "end_turn"

        events = _events(_post(api.url, main)[1])  # script exhausted
        assert "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta") == "Done."
        assert len(api.main_turns()) == 3


# -- claude -p ---------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    p = tmp_path / "project"
    p.mkdir()
    return p


@needs_claude
def test_print_mode_prints_scripted_text(tmp_path: Path, project: Path):
    with ScriptedAnthropic([[Text("Hello from the scripted endpoint!")]]) as api:
        env = claude_env(tmp_path / "home", [project], api.url)
        proc = subprocess.run(["claude", "-p", "say hi"], cwd=project, env=env,
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Hello from the scripted endpoint!"
    turns = api.main_turns()
    assert len(turns) == 1
    assert "say hi" in json.dumps(turns[0]["messages"])


@needs_claude
def test_print_mode_runs_scripted_bash_tool(tmp_path: Path, project: Path):
    target = tmp_path / "made-by-agent"
    script = [[Text("Creating it."), ToolUse(f"touch {target}", description="Create a file")],
              [Text("Created the file.")]]
    with ScriptedAnthropic(script) as api:
        env = claude_env(tmp_path / "home", [project], api.url)
        proc = subprocess.run(["claude", "-p", "--dangerously-skip-permissions", "make the file"],
                              cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert target.exists()
    assert "Created the file." in proc.stdout
    turns = api.main_turns()
    assert len(turns) == 2
    last = turns[1]["messages"][-1]["content"]
    assert any(isinstance(c, dict) and c.get("type") == "tool_result" for c in last)


# -- interactive claude in a private tmux server ----------------------------------------------


@pytest.fixture
def tmux_factory(tmp_path: Path):
    servers: list[PrivateTmux] = []

    def make(env: dict[str, str]) -> PrivateTmux:
        server = PrivateTmux(tmp_path / f"tmux{len(servers)}", env)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.kill()


@needs_claude
@needs_tmux
def test_interactive_prompt_busy_then_idle(tmp_path: Path, project: Path, tmux_factory):
    patterns = load_patterns()
    reply = "Streaming slowly so that the agent stays busy for a few seconds, then done."
    with ScriptedAnthropic([[Text(reply, chunk_delay=0.3, chunks=20)]]) as api:
        env = claude_env(tmp_path / "home", [project], api.url)
        tmux = tmux_factory(env)
        tmux.new_session("agent", ["claude"], cwd=project, width=120, height=40)

        def status() -> str:
            return classify(tmux.capture("agent"), patterns)

        def screen_says(text: str):
            return lambda: text in tmux.capture("agent")

        wait_for(lambda: status() == "idle", timeout=60, message="claude's input prompt")
        tmux.send_text("agent", "Please answer slowly.")
        wait_for(screen_says("answer slowly."), timeout=15, message="the typed message")
        tmux.send_keys("agent", "Enter")

        wait_for(lambda: status() == "busy", timeout=30, message="the working spinner")
        assert "esc to interrupt" in tmux.capture("agent")

        wait_for(lambda: status() == "idle" and "then done." in tmux.capture("agent"),
                 timeout=60, message="the reply and the prompt again")
        assert not tmux.pane_dead("agent")
    assert len(api.main_turns()) == 1


@needs_claude
@needs_tmux
def test_interactive_permission_prompt_is_needs_input(tmp_path: Path, project: Path, tmux_factory):
    patterns = load_patterns()
    target = tmp_path / "approved"
    script = [[ToolUse(f"touch {target}", description="Create a file")], [Text("Made it.")]]
    with ScriptedAnthropic(script) as api:
        env = claude_env(tmp_path / "home", [project], api.url)
        tmux = tmux_factory(env)
        tmux.new_session("agent", ["claude"], cwd=project, width=120, height=40)
        wait_for(lambda: classify(tmux.capture("agent"), patterns) == "idle", timeout=60, message="the prompt")
        tmux.send_text("agent", "Create the file.")
        wait_for(lambda: "the file." in tmux.capture("agent"), timeout=15, message="the typed message")
        tmux.send_keys("agent", "Enter")
        wait_for(lambda: classify(tmux.capture("agent"), patterns) == "needs_input", timeout=30,
                 message="the permission prompt")
        assert not target.exists()
        tmux.send_keys("agent", "Enter")  # 1. Yes
        wait_for(lambda: classify(tmux.capture("agent"), patterns) == "idle" and "Made it." in tmux.capture("agent"),
                 timeout=60, message="the final reply")
        assert target.exists()
    assert len(api.main_turns()) == 2


# -- the captured screens and the status regexes ------------------------------------------------


@pytest.mark.parametrize("name", SCREENS)
def test_captured_screen_classifies(name: str):
    screen = (SCREEN_DIR / f"{name}.txt").read_text()
    assert (SCREEN_DIR / f"{name}.ansi").exists()
    assert classify(screen) == expected_status(name)


@pytest.mark.parametrize("name", SCREENS)
def test_status_patterns_are_specific(name: str):
    """No pattern of another status matches the screen (idle never matches a busy screen, etc.)."""
    screen = (SCREEN_DIR / f"{name}.txt").read_text()
    own = expected_status(name)
    for status, pats in load_patterns().items():
        matching = [p.pattern for p in pats if p.search(screen)]
        if status == own:
            assert matching, f"no {status} pattern matches {name}"
        else:
            assert not matching, f"{status} patterns {matching} match the {own} screen {name}"


def test_agent_asking_a_question_is_not_needs_input():
    """An agent reply that asks "Do you want ...?" at the prompt is idle, not a dialog."""
    screen = (SCREEN_DIR / "idle_after.txt").read_text()
    screen = screen.replace(
        "● Created the marker file.\n",
        "● Created the marker file.\n\n  Do you want me to proceed with the rest?\n  1. Yes, all of it\n",
    )
    assert "Do you want me to proceed" in screen
    assert classify(screen) == "idle"
