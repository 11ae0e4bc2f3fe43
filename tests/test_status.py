"""The agent-status classifier on screens captured from the real CLIs, and on the shell."""

from __future__ import annotations

from pathlib import Path

import pytest

from planeai.core.status import AgentStatus, Observation, classify
from planeai.providers import load_registry

ROOT = Path(__file__).resolve().parent.parent
SCREENS = ROOT / "tests" / "data" / "screens"
REG = load_registry([ROOT / "providers"])

EXPECTED = {"idle": AgentStatus.IDLE, "busy": AgentStatus.BUSY,
            "needs": AgentStatus.NEEDS_INPUT}


def _cases():
    for provider in ("claude", "codex"):
        for f in sorted((SCREENS / provider).glob("*.txt")):
            kind = f.stem.split("_")[0]
            kind = "needs" if f.stem.startswith("needs_input") else kind
            yield pytest.param(provider, f, EXPECTED[kind], id=f"{provider}-{f.stem}")


@pytest.mark.parametrize("provider, screen, expected", list(_cases()))
def test_captured_screens_classify(provider, screen, expected):
    patterns = REG.get(provider).status
    text = screen.read_text(encoding="utf-8")
    # idle screens must be idle with no timing help at all, and stay so with stale output
    for since in (None, 30.0):
        assert classify(Observation(text, seconds_since_output=since), patterns) is expected


def test_every_status_has_a_captured_claude_screen():
    stems = {f.stem.split("_")[0] for f in (SCREENS / "claude").glob("*.txt")}
    assert {"idle", "busy", "needs"} <= stems


SHELL = REG.get("shell").status


@pytest.mark.parametrize("screen, since, expected", [
    ("user@host:~/wt$", 10.0, AgentStatus.IDLE),
    ("root@vm:/tmp/x#\n\n\n", 10.0, AgentStatus.IDLE),
    ("$ echo hi\nhi\n$", 10.0, AgentStatus.IDLE),
    ("$ make\ncompiling foo.c", 0.2, AgentStatus.BUSY),
    ("$ sleep 100", 20.0, AgentStatus.IDLE),   # silent but not at a prompt: timing says idle
    ("$ yes\ny\ny\ny", 0.1, AgentStatus.BUSY),
    ("", 0.0, AgentStatus.BUSY),
])
def test_shell_screens(screen, since, expected):
    assert classify(Observation(screen, seconds_since_output=since,
                                seconds_since_start=60), SHELL) is expected


def test_blank_new_session_is_starting_and_dead_is_exited():
    obs = Observation("", seconds_since_output=None, seconds_since_start=0.5)
    assert classify(obs, SHELL) is AgentStatus.STARTING
    # a slow start: nothing drawn after 20 s is still starting, not idle
    obs = Observation("", seconds_since_output=None, seconds_since_start=20)
    assert classify(obs, SHELL) is AgentStatus.STARTING
    # a screen cleared after output is not a start
    obs = Observation("", seconds_since_output=10.0, seconds_since_start=20)
    assert classify(obs, SHELL) is AgentStatus.IDLE
    obs = Observation("$", alive=False, exit_code=0)
    assert classify(obs, SHELL) is AgentStatus.EXITED


def test_old_question_scrolled_far_up_does_not_count():
    patterns = REG.get("claude").status
    needs = (SCREENS / "claude" / "needs_input.txt").read_text()
    idle = (SCREENS / "claude" / "idle_after.txt").read_text()
    # a needs-input screen followed by a full screen of later output
    screen = needs + "\n" + "\n".join(f"output {i}" for i in range(60)) + "\n" + idle
    assert classify(Observation(screen, seconds_since_output=30), patterns) is AgentStatus.IDLE
