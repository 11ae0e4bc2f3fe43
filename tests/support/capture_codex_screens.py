"""Regenerate tests/data/screens/codex/*.txt / *.ansi from the REAL Codex CLI (``@openai/codex``).

Interactive ``codex`` runs offline in a private tmux server at 120x40 against the scripted
Responses endpoint (tests/support/openai_endpoint.py); captured states::

    idle         fresh, at the "› Ask Codex to do anything" prompt
    busy         "• Working (Ns • esc to interrupt)" while the endpoint holds back the first token
    needs_input  "Would you like to run the following command?" (an exec_command with
                 sandbox_permissions=require_escalated)
    idle_after   after approving it and the final reply
    needs_input_signin  no login (no ~/.codex/auth.json, the default OpenAI provider):
                 "Choose how you want to use Codex. > 1. Sign in with ChatGPT ... Press enter"
    needs_input_trust   a folder not trusted yet: "Trust this folder? ... › 1. Trust and continue"

Usage (from the repo root)::

    python -m tests.support.capture_codex_screens [--out tests/data/screens/codex] [--check]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from tests.support.capture_claude_screens import classify, load_patterns
from tests.support.claude_cli import PrivateTmux, wait_for
from tests.support.codex_cli import codex_argv, codex_bin, codex_env, reap_codex_processes
from tests.support.openai_endpoint import ScriptedOpenAI, Text, ToolUse

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "data" / "screens" / "codex"
PATTERNS = DEFAULT_OUT / "status_patterns.toml"
BASE = Path("/tmp/planeai-codex-screens")
SESSION = "codex"
SCREENS = ("idle", "busy", "needs_input", "idle_after", "needs_input_signin",
           "needs_input_trust")


def capture_trust(base: Path) -> dict[str, str]:
    """The folder-trust question of a git repo not in config.toml's [projects] (a plain
    folder is not asked about)."""
    import subprocess

    project = base / "trust-project"
    project.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    with ScriptedOpenAI([]) as api:
        home = base / "home-trust"
        env = codex_env(home, [], api.url)
        tmux = PrivateTmux(base / "tmux-trust", env, label="capture-codex-trust")
        try:
            tmux.new_session(SESSION, codex_argv(), cwd=project, width=120, height=40)
            wait_for(lambda: "Trust and continue" in tmux.capture(SESSION), timeout=60,
                     message="the trust question")
            return {"needs_input_trust": tmux.capture(SESSION),
                    "needs_input_trust.ansi": tmux.capture(SESSION, ansi=True)}
        finally:
            tmux.kill()
            reap_codex_processes(home)


def capture_signin(base: Path, project: Path) -> dict[str, str]:
    """The sign-in screen interactive codex shows with no login (an OPENAI_API_KEY in the
    environment does not skip it with the default provider: measured, 0.169.0)."""
    import os

    home = base / "home-signin"
    (home / ".codex").mkdir(parents=True)
    (home / ".codex" / "config.toml").write_text(
        f'check_for_update_on_startup = false\n[projects."{project.resolve()}"]\n'
        'trust_level = "trusted"\n')
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "USER", "SHELL")}
    env.update(HOME=str(home), TERM="xterm-256color", LANG=env.get("LANG", "C.UTF-8"))
    tmux = PrivateTmux(base / "tmux-signin", env, label="capture-codex-signin")
    try:
        tmux.new_session(SESSION, codex_argv(), cwd=project, width=120, height=40)
        wait_for(lambda: "Press enter to continue" in tmux.capture(SESSION), timeout=60,
                 message="the sign-in screen")
        return {"needs_input_signin": tmux.capture(SESSION),
                "needs_input_signin.ansi": tmux.capture(SESSION, ansi=True)}
    finally:
        tmux.kill()
        reap_codex_processes(home)


def capture(out: Path, *, base: Path = BASE, verbose: bool = True) -> dict[str, str]:
    if not codex_bin():
        raise SystemExit("codex is not on PATH: npm install -g @openai/codex")
    if base.exists():
        shutil.rmtree(base)
    project = base / "project"
    project.mkdir(parents=True)
    target = base / "made-by-agent"
    script = [
        [Text("Here is an answer that took a while to start.", start_delay=6)],
        [
            Text("I will create the file."),
            ToolUse(f"touch {target}", extra={"sandbox_permissions": "require_escalated",
                                              "justification": "Create the marker file?"}),
        ],
        [Text("Created the marker file.")],
    ]
    screens: dict[str, str] = {}
    with ScriptedOpenAI(script) as api:
        env = codex_env(base / "home", [project], api.url)
        tmux = PrivateTmux(base / "tmux", env, label="capture-codex")

        def grab(name: str, predicate, message: str, timeout: float = 60.0) -> None:
            wait_for(lambda: predicate(tmux.capture(SESSION)), timeout=timeout, message=message)
            screens[name] = tmux.capture(SESSION)
            screens[name + ".ansi"] = tmux.capture(SESSION, ansi=True)
            if verbose:
                print(f"captured {name}", file=sys.stderr)

        try:
            tmux.new_session(SESSION, codex_argv(), cwd=project, width=120, height=40)
            # the footer gains the model line once start-up has settled
            grab("idle", lambda s: "? for shortcuts" in s and "gpt-5-codex" in s, "the prompt")
            tmux.send_text(SESSION, "Tell me something.")
            wait_for(lambda: "something." in tmux.capture(SESSION), timeout=10, message="typed text")
            tmux.send_keys(SESSION, "Enter")
            grab("busy", lambda s: "esc to interrupt)" in s, "the Working line")
            wait_for(lambda: "a while to start." in tmux.capture(SESSION) and "esc to interrupt)" not in tmux.capture(SESSION),
                     timeout=60, message="the first reply")
            tmux.send_text(SESSION, "Create the marker file.")
            wait_for(lambda: "marker file." in tmux.capture(SESSION), timeout=10, message="typed text")
            tmux.send_keys(SESSION, "Enter")
            grab("needs_input", lambda s: "Would you like to run" in s, "the approval dialog")
            tmux.send_keys(SESSION, "Enter")  # 1. Yes, proceed
            grab("idle_after", lambda s: "Created the marker file." in s and "Worked for" in s.split("Created the marker file.")[-1],
                 "the final reply")
            if not target.exists():
                raise RuntimeError("the approved command did not run")
        finally:
            tmux.kill()
            reap_codex_processes(base / "home")
    screens.update(capture_signin(base, project))
    screens.update(capture_trust(base))

    out.mkdir(parents=True, exist_ok=True)
    for name, text in screens.items():
        (out / (name if name.endswith(".ansi") else f"{name}.txt")).write_text(text)
    return screens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    screens = capture(args.out)
    if args.check:
        patterns = load_patterns(PATTERNS)
        bad = 0
        for name in SCREENS:
            got = classify(screens[name], patterns)
            want = "idle" if name.startswith("idle") else name
            print(f"{name:12} -> {got}")
            bad += got != want
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
