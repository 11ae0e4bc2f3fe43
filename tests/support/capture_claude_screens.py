"""Regenerate tests/data/screens/claude/*.txt / *.ansi from the REAL Claude Code CLI.

Runs interactive ``claude`` offline in a private tmux server at 120x40 against the scripted
Anthropic endpoint and captures four states::

    idle         fresh, at the input prompt
    busy         while the endpoint streams a reply slowly (spinner + "esc to interrupt")
    needs_input  a Bash tool_use without --dangerously-skip-permissions: the permission prompt
    idle_after   after approving the command and the final reply: back at the prompt

and, in a second session started with --dangerously-skip-permissions (other footer)::

    idle_bypass  fresh prompt, footer "⏵⏵ bypass permissions on (shift+tab to cycle)"
    idle_draft   a message typed but not sent
    busy_tool    while a Bash tool (sleep) runs: "⎿  Running…" and "esc to interrupt"

and the two start-up dialogs a missing ~/.claude.json field brings up::

    needs_input_trust   "Accessing workspace ... ❯ 1. Yes, I trust this folder"
    needs_input_apikey  "Detected a custom API key ... Do you want to use this API key?"
    needs_input_bypass  "WARNING: Claude Code running in Bypass Permissions mode ... 2. Yes, I accept"
    needs_input_login   no key, no login: "Not logged in · Run /login" under the prompt

Usage (from the repo root)::

    python -m tests.support.capture_claude_screens [--out tests/data/screens/claude]

The project directory is a fixed path (/tmp/planeai-claude-screens/project) so the screens do
not change with a random temp name. Spinner verbs ("Imagining…", "Churned for 7s") are chosen at
random by the CLI, so every capture differs in those words.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tomllib
from pathlib import Path

from tests.support.anthropic_endpoint import ScriptedAnthropic, Text, ToolUse
from tests.support.claude_cli import PrivateTmux, claude_bin, claude_env, claude_version, wait_for

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "data" / "screens" / "claude"
BASE = Path("/tmp/planeai-claude-screens")
WIDTH, HEIGHT = 120, 40
SESSION = "claude"

SLOW_TEXT = (
    "Here is a slowly streamed answer, one piece at a time, so that the agent stays busy for a "
    "while and its working spinner can be captured by the screen tests of planeai."
)


SCREENS = (
    "idle", "busy", "needs_input", "idle_after", "idle_bypass", "idle_draft", "busy_tool",
    "needs_input_trust", "needs_input_apikey", "needs_input_bypass",
    "needs_input_login",
)


def expected_status(screen_name: str) -> str:
    """The status a screen file is named for: idle_after -> idle, busy_tool -> busy ..."""
    return "needs_input" if screen_name.startswith("needs_input") else screen_name.split("_")[0]


def load_patterns(path: Path | None = None) -> dict[str, list[re.Pattern[str]]]:
    """The status regexes from status_patterns.toml, compiled (MULTILINE)."""
    path = path or DEFAULT_OUT / "status_patterns.toml"
    data = tomllib.loads(path.read_text())
    return {k: [re.compile(p, re.MULTILINE) for p in data[k]] for k in ("needs_input", "busy", "idle")}


def classify(screen: str, patterns: dict[str, list[re.Pattern[str]]] | None = None) -> str:
    """needs_input / busy / idle (first match in that order), or "unknown"."""
    patterns = patterns or load_patterns()
    for status in ("needs_input", "busy", "idle"):
        if any(p.search(screen) for p in patterns[status]):
            return status
    return "unknown"


def _at_prompt(screen: str) -> bool:
    return bool(re.search(r"^\s*\? for shortcuts", screen, re.M)) and "esc to interrupt" not in screen


def capture(out: Path, *, base: Path = BASE, verbose: bool = True) -> dict[str, str]:
    if not claude_bin():
        raise SystemExit("claude is not on PATH: npm install -g @anthropic-ai/claude-code")
    if base.exists():
        shutil.rmtree(base)
    project = base / "project"
    project.mkdir(parents=True)
    target = base / "made-by-agent"

    script = [
        [Text(SLOW_TEXT, chunk_delay=0.4, chunks=30)],
        [Text("I will create the file."), ToolUse(f"touch {target}", description="Create a marker file")],
        [Text("Created the marker file.")],
    ]
    screens: dict[str, str] = {}
    tmux: PrivateTmux

    def grab(name: str, predicate, message: str, timeout: float = 60.0, on=None) -> None:
        t = on or tmux
        wait_for(lambda: predicate(t.capture(SESSION)), timeout=timeout, message=message)
        screens[name] = t.capture(SESSION)
        screens[name + ".ansi"] = t.capture(SESSION, ansi=True)
        if verbose:
            print(f"captured {name}", file=sys.stderr)

    with ScriptedAnthropic(script) as api:
        env = claude_env(base / "home", [project], api.url)
        tmux = PrivateTmux(base / "tmux", env, label="capture-claude")
        try:
            tmux.new_session(SESSION, ["claude"], cwd=project, width=WIDTH, height=HEIGHT)

            grab("idle", _at_prompt, "the input prompt")

            tmux.send_text(SESSION, "Tell me something, slowly.")
            wait_for(lambda: "slowly." in tmux.capture(SESSION), timeout=10, message="typed text")
            tmux.send_keys(SESSION, "Enter")
            grab(
                "busy",
                lambda s: "esc to interrupt" in s and "one piece at a time" in s,
                "the working spinner while streaming",
            )
            wait_for(lambda: _at_prompt(tmux.capture(SESSION)) and "planeai." in tmux.capture(SESSION),
                     timeout=60, message="the end of the slow reply")

            tmux.send_text(SESSION, "Create the marker file.")
            wait_for(lambda: "marker file." in tmux.capture(SESSION), timeout=10, message="typed text")
            tmux.send_keys(SESSION, "Enter")
            grab("needs_input", lambda s: "Do you want to proceed?" in s, "the permission prompt")

            tmux.send_keys(SESSION, "Enter")  # "1. Yes" is preselected
            grab("idle_after", lambda s: _at_prompt(s) and "Created the marker file." in s, "the final reply")
            if not target.exists():
                raise RuntimeError("the approved Bash command did not run")
        finally:
            tmux.kill()

    bypass_script = [[Text("Waiting."), ToolUse("sleep 6", description="Wait six seconds")], [Text("Waited.")]]
    with ScriptedAnthropic(bypass_script) as api:
        env = claude_env(base / "home2", [project], api.url)
        tmux = PrivateTmux(base / "tmux2", env, label="capture-claude-bypass")
        try:
            tmux.new_session(SESSION, ["claude", "--dangerously-skip-permissions"], cwd=project, width=WIDTH, height=HEIGHT)
            grab("idle_bypass", lambda s: "bypass permissions on" in s and "❯" in s, "the input prompt (bypass mode)")
            tmux.send_text(SESSION, "Wait a little, please.")
            grab("idle_draft", lambda s: "please." in s, "the typed draft")
            tmux.send_keys(SESSION, "Enter")
            grab("busy_tool", lambda s: "Running…" in s and "esc to interrupt" in s, "the running Bash tool")
            wait_for(lambda: "Waited." in tmux.capture(SESSION) and "esc to interrupt" not in tmux.capture(SESSION),
                     timeout=60, message="the end of the tool turn")
        finally:
            tmux.kill()

    capture_dialogs(base, project, grab)
    capture_login(base, project, grab)

    out.mkdir(parents=True, exist_ok=True)
    for name, text in screens.items():
        suffix = "" if name.endswith(".ansi") else ".txt"
        (out / f"{name}{suffix}").write_text(text)
    if verbose:
        print(f"claude {claude_version()} screens written to {out}", file=sys.stderr)
    return screens


DIALOGS = (
    ("needs_input_trust", {"trust_projects": False}, "trust this folder", []),
    ("needs_input_apikey", {"approve_key": False}, "use this API key?", []),
    # bypass mode never accepted in this HOME (the folder is trusted)
    ("needs_input_bypass", {"accept_bypass": False}, "Yes, I accept",
     ["--dangerously-skip-permissions"]),
)


def capture_dialogs(base: Path, project: Path, grab, only: tuple[str, ...] = ()) -> None:
    """The start-up dialogs a missing ~/.claude.json / settings field brings up."""
    for name, kwargs, marker, args in DIALOGS:
        if only and name not in only:
            continue
        with ScriptedAnthropic([]) as api:
            env = claude_env(base / f"home-{name}", [project], api.url, **kwargs)
            tmux = PrivateTmux(base / f"tmux-{name}", env, label=f"capture-{name}")
            try:
                tmux.new_session(SESSION, ["claude", *args], cwd=project, width=WIDTH,
                                 height=HEIGHT)
                grab(name, lambda s, m=marker: m in s and "Enter to confirm" in s,
                     f"the dialog ({marker})", on=tmux)
            finally:
                tmux.kill()


def capture_login(base: Path, project: Path, grab) -> None:
    """Onboarding done but no API key and no login: the prompt with "Not logged in · Run
    /login" in its footer (nothing it is told can run until someone logs in)."""
    env = claude_env(base / "home-login", [project], "http://127.0.0.1:9")
    env.pop("ANTHROPIC_API_KEY")
    tmux = PrivateTmux(base / "tmux-login", env, label="capture-login")
    try:
        tmux.new_session(SESSION, ["claude"], cwd=project, width=WIDTH, height=HEIGHT)
        grab("needs_input_login", lambda s: "Run /login" in s, "the login footer", on=tmux)
    finally:
        tmux.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="classify the captured screens with status_patterns.toml")
    args = parser.parse_args(argv)
    screens = capture(args.out)
    if args.check:
        patterns = load_patterns()
        bad = 0
        for name in SCREENS:
            got = classify(screens[name], patterns)
            want = expected_status(name)
            print(f"{name:12} -> {got}")
            bad += got != want
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
