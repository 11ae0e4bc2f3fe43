"""`planeai session send` types a prompt only into an agent at its prompt, and says what
became of it; `planeai session keys` answers an agent's dialog.

With the echo agent (tests/support/echo_agent.py) on a private tmux server: a provider file
whose status patterns turn its echoed lines into states (``got: ASK ...`` is a question,
``got: WORK ...`` is work), so idle, busy, needs input and exited are all reachable. Then
with the real Claude Code CLI at its own permission prompt.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ECHO_AGENT, install_echo_agent
from test_tui_helpers import anyio_backend, services, shell_env  # noqa: F401
from tests.support.anthropic_endpoint import ScriptedAnthropic, Text, ToolUse
from tests.support.claude_cli import claude_bin, claude_env
from tests.support.polling import retry_until

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


def install_asker(providers_dir: Path) -> str:
    """The echo agent with patterns: its last echoed line decides what it is doing."""
    providers_dir.mkdir(parents=True, exist_ok=True)
    (providers_dir / "asker.toml").write_text(
        f'name = "asker"\nbinary = "{sys.executable}"\n'
        f'command = ["{sys.executable}", "{ECHO_AGENT}", "{{prompt}}"]\n'
        '[status]\n'
        "needs_input = ['^got: ASK [^\\n]*\\n> ?\\Z']\n"
        "busy = ['^got: WORK\\b[^\\n]*\\n> ?\\Z']\n"
        "idle = ['^> ?\\Z']\n")
    return "asker"


@pytest.fixture
def cli(tmux_cli_env, planeai_home, repo):
    env = tmux_cli_env('[defaults]\nbackend = "tmux"\n')

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "planeai.cli.main", *args], env=env,
                              cwd=repo, capture_output=True, text=True, timeout=120)

    assert run("project", "add", str(repo)).returncode == 0
    providers = planeai_home / "config" / "providers"
    install_echo_agent(providers)
    install_asker(providers)
    assert run("task", "add", "one").returncode == 0
    yield run
    run("session", "stop", "PLA-1")


def start(cli, agent: str) -> None:
    r = cli("session", "start", "PLA-1", "--provider", agent)
    assert r.returncode == 0, r.stderr
    wait_status(cli, "idle")


def status(cli) -> str:
    return json.loads(cli("session", "list", "--json").stdout)[0]["agent_status"]


def wait_status(cli, want: str) -> None:
    retry_until(lambda: status(cli) == want, message=f"agent {want}", interval=0.2)


def screen(cli) -> str:
    return cli("session", "logs", "PLA-1").stdout


def test_send_to_an_idle_agent_is_delivered_and_it_goes_busy(cli):
    start(cli, "echoer")
    r = cli("session", "send", "PLA-1", "hello there")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "delivered; PLA-1 is busy"
    assert "got: hello there" in screen(cli)
    # the next one waits for idle first; JSON says the same
    r = cli("session", "send", "PLA-1", "again", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) | {"chars": 5} == {
        "session": "PLA-1", "delivered": True, "status": "busy", "chars": 5, "question": []}
    assert "got: again" in screen(cli)


def test_send_to_an_agent_with_a_question_is_refused_and_keys_answer_it(cli):
    start(cli, "asker")
    r = cli("session", "send", "PLA-1", "ASK Proceed? [y/n]", "--force")
    wait_status(cli, "needs_input")

    r = cli("session", "send", "PLA-1", "do something else")
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[0] == ("planeai: error: PLA-1 is waiting for an answer to a question on its "
                        "screen; nothing was sent")
    assert "  | got: ASK Proceed? [y/n]" in lines
    assert "planeai session keys PLA-1 Enter" in lines[-1]
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert "do something else" not in screen(cli)
    assert status(cli) == "needs_input"  # still asking

    r = cli("session", "send", "PLA-1", "again", "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["delivered"] is False and out["status"] == "needs_input"
    assert "got: ASK Proceed? [y/n]" in out["question"]

    r = cli("session", "keys", "PLA-1", "y", "Enter")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "sent y Enter; PLA-1 is idle"
    assert "got: y\n" in screen(cli)

    # this agent reads idle again at once: not taken for work, and it says so
    r = cli("session", "send", "PLA-1", "plain words", "--watch", "1")
    assert r.returncode == 1
    assert r.stderr.strip() == ("sent, but PLA-1 did not start working within 1 s "
                                "(status: idle)")
    assert "got: plain words" in screen(cli)


def test_a_busy_agent_is_waited_for_then_refused_unless_forced(cli):
    start(cli, "asker")
    cli("session", "send", "PLA-1", "WORK on it", "--force")
    wait_status(cli, "busy")
    r = cli("session", "send", "PLA-1", "are you done?", "--wait", "1")
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == ("planeai: error: PLA-1 is still busy after 1 s; "
                                        "nothing was sent")
    assert "--force" in r.stderr
    assert "are you done?" not in screen(cli)
    r = cli("session", "send", "PLA-1", "are you done?", "--force", "--watch", "0")
    assert "got: are you done?" in screen(cli)


def test_keys_to_an_exited_agent_and_a_send_after_it_are_refused(cli):
    start(cli, "echoer")
    r = cli("session", "keys", "PLA-1", "C-d")  # end of input: the echo agent exits
    assert r.returncode == 0, r.stderr
    retry_until(lambda: json.loads(cli("session", "list", "--json").stdout)[0]["state"]
                == "exited", message="agent exited", interval=0.2)
    r = cli("session", "send", "PLA-1", "anyone?")
    assert r.returncode == 1
    assert r.stderr.splitlines() == ["planeai: error: PLA-1 is exited; nothing was sent",
                                     "start it again: planeai session restart PLA-1"]
    r = cli("session", "send", "PLA-1", "anyone?", "--json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["status"] == "exited"
    r = cli("session", "keys", "PLA-1", "Enter")
    assert r.returncode == 1 and "nothing was sent" in r.stderr


def test_bad_input_is_one_line_and_sends_nothing(cli):
    start(cli, "echoer")
    before = screen(cli)
    for args, says in (
        (["keys", "PLA-1", "Down", "Hyper"], "unknown key 'Hyper'; accepted: Enter, Escape"),
        (["keys", "NOPE-1", "Hyper"], "unknown key 'Hyper'"),  # the keys before the session
        (["keys", "PLA-1", "ab"], "unknown key 'ab'"),
        (["keys", "PLA-9", "Enter"], "no session"),
        (["send", "PLA-1", "  "], "nothing to send"),
        (["send", "PLA-1", "hi", "--wait", "-1"], "--wait -1: give seconds"),
        (["send", "PLA-9", "hi"], "no session"),
    ):
        r = cli("session", *args)
        assert r.returncode == 1, args
        assert len(r.stderr.splitlines()) == 1 and says in r.stderr, (args, r.stderr)
    assert screen(cli) == before


def test_the_question_is_the_dialog_at_the_bottom_of_the_screen():
    """From real captured screens: the dialog under the last rule, not the conversation."""
    from planeai.services.session_input import screen_question

    screens = Path(__file__).parent / "data" / "screens" / "claude"
    q = screen_question((screens / "needs_input.txt").read_text())
    assert q[0] == "Bash command" and "Do you want to proceed?" in q
    assert q[-1].startswith("Esc to cancel") and not any("Crunched" in x for x in q)
    q = screen_question((screens / "needs_input_trust.txt").read_text())
    assert q[0] == "Accessing workspace:" and "❯ 1. Yes, I trust this folder" in q
    assert screen_question("work\n\x1b[31mred\n\n") == ["work", " [31mred"]


def test_key_names_are_one_table_for_every_backend():
    from planeai.backends.base import key_bytes

    assert key_bytes(["Down", "Enter", "1", "y", "C-c", "Escape", "Space"]) == \
        b"\x1b[B\r1y\x03\x1b "


# ---------------------------------------------------------------------- the real Claude
@pytest.mark.skipif(claude_bin() is None, reason="Claude Code CLI not installed "
                    "(npm install -g @anthropic-ai/claude-code)")
def test_claude_at_its_permission_prompt(repo, tmp_path, planeai_home, tmux_cli_env):
    """Claude asks before running a Bash command: a prompt sent then is refused and the
    dialog stays; Enter answers it (the command runs); a prompt to the idle agent is
    delivered and it goes busy."""
    canary = tmp_path / "canary"
    worktree = planeai_home / "data" / "worktrees" / repo.name / "PLA-1"
    script = [[ToolUse(f"touch {canary}", description="Create the canary")],
              [Text("Made the canary.")],
              [Text("A slow second answer, streamed in pieces.", chunk_delay=0.3, chunks=10,
                    start_delay=1.0)]]
    with ScriptedAnthropic(script) as api:
        env = tmux_cli_env('[defaults]\nbackend = "tmux"\n')
        env.update(claude_env(tmp_path / "home", [worktree], api.url))
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
        env["PLANEAI_HOME"] = str(planeai_home)

        def cli(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "planeai.cli.main", *args], env=env,
                                  cwd=repo, capture_output=True, text=True, timeout=120)

        def claude_status() -> str:
            return json.loads(cli("session", "list", "--json").stdout)[0]["agent_status"]

        assert cli("project", "add", str(repo)).returncode == 0
        assert cli("task", "add", "Make a canary").returncode == 0
        r = cli("session", "start", "PLA-1", "--provider", "claude-sonnet",
                "--prompt", "Create the canary file.")
        assert r.returncode == 0, r.stderr
        try:
            retry_until(lambda: claude_status() == "needs_input", timeout=90, interval=0.3,
                        message="claude at its permission prompt")
            r = cli("session", "send", "PLA-1", "Never mind, do something else.")
            assert r.returncode == 1
            assert r.stderr.startswith("planeai: error: PLA-1 is waiting for an answer")
            assert "  | Do you want to proceed?" in r.stderr.splitlines()
            assert "planeai session keys PLA-1" in r.stderr
            # the dialog is still at the bottom of the screen, the prompt typed nowhere
            logs = cli("session", "logs", "PLA-1").stdout
            bottom = [ln.strip() for ln in logs.splitlines() if ln.strip()][-8:]
            assert "Do you want to proceed?" in bottom and "❯ 1. Yes" in bottom, bottom
            assert claude_status() == "needs_input"
            assert "Never mind" not in logs
            assert not canary.exists() and len(api.main_turns()) == 1

            r = cli("session", "keys", "PLA-1", "Enter")
            assert r.returncode == 0, r.stderr
            assert r.stdout.startswith("sent Enter; PLA-1 is ")
            retry_until(canary.exists, timeout=60, message="the Bash command ran")
            retry_until(lambda: claude_status() == "idle" and len(api.main_turns()) == 2,
                        timeout=90, interval=0.3, message="claude idle after the tool")

            r = cli("session", "send", "PLA-1", "Please say more, slowly.")
            assert r.returncode == 0, r.stderr
            assert r.stdout.strip() == "delivered; PLA-1 is busy"
            retry_until(lambda: len(api.main_turns()) == 3, timeout=60,
                        message="the prompt reached the model")
            assert "Please say more, slowly." in json.dumps(api.main_turns()[-1]["messages"][-1])
        finally:
            cli("session", "stop", "PLA-1")


# ---------------------------------------------------------------------- the app
@pytest.mark.anyio
@pytest.mark.timeout(120)
async def test_app_refuses_a_prompt_at_a_question_and_K_answers_it(services):
    from planeai.tui.keys_dialog import KeysDialog
    from planeai.tui.prompt_dialog import PromptDialog
    from test_tui_helpers import make_app, session_of, wait_for

    install_asker(services.locs.user_providers_dir)
    services.task("Ask me")
    m = services.manager
    s = m.start(task_key="DEM-1", agent="asker", backend="local")
    be = m.backend("local")
    m.send(s.id, "ASK Proceed? [y/n]")
    app = make_app(services)

    def said(text: str) -> bool:
        return any(text in n.message for n in app._notifications)

    async with app.run_test(size=(140, 36)) as pilot:
        await wait_for(pilot, lambda: session_of(app, "DEM-1") is not None
                       and session_of(app, "DEM-1").agent_status == "needs_input",
                       what="the agent asks")
        assert app.sidebar.select_id("t:DEM-1")
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptDialog), what="prompt box")
        app.screen.query_one("TextArea").text = "something else"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: said("DEM-1 is waiting for an answer"), what="refusal")
        assert said("got: ASK Proceed? \\[y/n]") and said("answer it with K")  # as markup
        assert "something else" not in be.snapshot("DEM-1").text

        await pilot.press("K")
        await wait_for(pilot, lambda: isinstance(app.screen, KeysDialog), what="keys box")
        assert "got: ASK Proceed? [y/n]" in str(app.screen.query_one("#question").render())
        app.screen.query_one("Input").value = "Hyper"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "unknown key 'Hyper'"
                       in str(app.screen.query_one("#error").render()), what="bad key said")
        assert isinstance(app.screen, KeysDialog)
        app.screen.query_one("Input").value = "y Enter"
        await pilot.press("enter")
        await wait_for(pilot, lambda: said("sent y Enter to DEM-1"), what="keys sent")
        assert "got: y" in be.snapshot("DEM-1").text

        await wait_for(pilot, lambda: session_of(app, "DEM-1").agent_status == "idle",
                       what="idle again")
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptDialog), what="prompt box")
        app.screen.query_one("TextArea").text = "now this"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: said("sent to DEM-1"), what="sent")
        assert "got: now this" in be.snapshot("DEM-1").text
