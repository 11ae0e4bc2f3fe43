"""Run the real Claude Code CLI offline against :mod:`tests.support.anthropic_endpoint`.

``claude_env`` prepares a private HOME so interactive ``claude`` starts straight at its input
prompt (no onboarding, no folder-trust dialog, no "use this API key?" question, no login, no
network) and returns the environment to run it with.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path

from tests.support.polling import retry_until

__all__ = ["claude_bin", "claude_env", "claude_version", "DEFAULT_API_KEY", "PrivateTmux",
           "TASK_IN_PROMPT", "for_planeai", "planeai", "wait_for"]

DEFAULT_API_KEY = "sk-ant-test-planeai-0123456789abcdefghijklmnopqrstuvwxyz"
# The task key and title in planeai's autonomous prompt, as a scripted model finds them in the
# conversation it is sent (JSON-encoded: a title ends at a line break or an escape).
TASK_IN_PROMPT = re.compile(r"on task (PLA-\d+): ([^\n\\]+)")


def for_planeai(env: dict, planeai_home: Path, config: Path, tmux_tmp: Path) -> dict:
    """``env`` (from :func:`claude_env`) for running planeai against a test's own home, config
    and private tmux, with this interpreter's planeai first on PATH and git's test identity."""
    import sys

    return {**env, "PLANEAI_HOME": str(planeai_home), "PLANEAI_CONFIG": str(config),
            "TMUX_TMPDIR": str(tmux_tmp),
            "PATH": str(Path(sys.executable).parent) + os.pathsep + env["PATH"],
            **{k: v for k, v in os.environ.items() if k.startswith("GIT_")}}


def planeai(env: dict, *args: str, timeout: float = 120) -> str:
    """Run the planeai CLI in a subprocess with ``env``; its stdout (exit 0 asserted)."""
    import sys

    r = subprocess.run([sys.executable, "-m", "planeai.cli.main", *args], env=env,
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r.stdout


def claude_bin() -> str | None:
    """Path of the ``claude`` executable, or None when Claude Code is not installed."""
    return shutil.which("claude")


def claude_version() -> str | None:
    exe = claude_bin()
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _project_entry() -> dict:
    return {
        "allowedTools": [],
        "hasTrustDialogAccepted": True,
        "hasCompletedProjectOnboarding": True,
        "projectOnboardingSeenCount": 1,
        "hasClaudeMdExternalIncludesApproved": False,
        "hasClaudeMdExternalIncludesWarningShown": False,
    }


def claude_env(
    home: Path,
    project_dirs: list[Path],
    base_url: str,
    api_key: str = DEFAULT_API_KEY,
    *,
    trust_projects: bool = True,
    approve_key: bool = True,
    accept_bypass: bool = True,
) -> dict[str, str]:
    """Write ``home/.claude.json`` (and ``home/.claude/``) and return the env to run ``claude``.

    The returned dict is a complete environment (it starts from a minimal copy of
    ``os.environ``: PATH, LANG, TERM ...), so pass it as ``env=`` as is.

    Three fields are required to reach the prompt (measured with 2.1.197; the rest only quiets
    hints): ``hasCompletedOnboarding``; ``projects[<abs path>].hasTrustDialogAccepted`` (else the
    "Accessing workspace ... trust this folder" dialog); the key's last 20 characters in
    ``customApiKeyResponses.approved`` (else "Detected a custom API key ... use this API key?",
    default answer No). ``trust_projects=False`` / ``approve_key=False`` leave those dialogs in;
    ``accept_bypass=False`` leaves bypass mode never accepted (the "Bypass Permissions mode ...
    Yes, I accept" consent shows with --dangerously-skip-permissions).
    """
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / ".claude").mkdir(exist_ok=True)

    projects = {}
    for d in project_dirs:
        p = Path(d).resolve()
        projects[str(p)] = _project_entry()
        # Claude Code looks the project up by its real path, but record the path as given too.
        projects.setdefault(str(Path(d).absolute()), _project_entry())
    if not trust_projects:
        for entry in projects.values():
            entry["hasTrustDialogAccepted"] = False

    config = {
        "numStartups": 1,
        "installMethod": "global",
        "autoUpdates": False,
        "hasCompletedOnboarding": True,
        "lastOnboardingVersion": "2.1.197",
        "theme": "dark",
        "customApiKeyResponses": {"approved": [api_key[-20:]] if approve_key else [],
                                  "rejected": []},
        "hasSeenTasksHint": True,
        "tipsHistory": {},
        "projects": projects,
    }
    if accept_bypass:
        config["bypassPermissionsModeAccepted"] = True
    (home / ".claude.json").write_text(json.dumps(config, indent=2))
    settings = home / ".claude" / "settings.json"
    if accept_bypass and not settings.exists():
        # The CLI migrates bypassPermissionsModeAccepted (above) into this setting on first
        # start; several agents starting at once race on that migration and one of them shows
        # the bypass-mode consent dialog. Writing the migrated form up front avoids the race.
        settings.write_text(json.dumps({"autoUpdates": False,
                                        "skipDangerousModePermissionPrompt": True}, indent=2))

    env = {k: v for k, v in os.environ.items()
           if k in ("PATH", "LANG", "LC_ALL", "TERM", "TZ", "USER", "LOGNAME", "SHELL")}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    env.setdefault("TERM", "xterm-256color")
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": api_key,
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_BUG_COMMAND": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
        }
    )
    for k in ("ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "TMUX",
              "TMUX_PANE"):
        env.pop(k, None)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env["IS_SANDBOX"] = "1"
    return env


# -- a private tmux server for driving interactive agent CLIs ---------------------------------


class PrivateTmux:
    """A tmux server on its own ``-L`` socket with ``TMUX_TMPDIR`` (and HOME) in a temp dir.

    Every command runs with the same environment, so the socket is always the private one.
    ``kill()`` stops the server and removes its socket; use it at teardown.
    """

    def __init__(self, tmpdir: Path, env: dict[str, str], *, label: str | None = None) -> None:
        self.label = label or f"test-{uuid.uuid4().hex[:10]}"
        self.tmpdir = Path(tmpdir)
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self.env = dict(env)
        self.env["TMUX_TMPDIR"] = str(self.tmpdir)
        self.env.pop("TMUX", None)
        self.conf = self.tmpdir / "tmux.conf"
        # focus-events on: otherwise Claude Code shows a transient "tmux focus-events off" notice.
        self.conf.write_text("set -g focus-events on\nset -g history-limit 5000\n"
                             "set -g remain-on-exit on\n")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["tmux", "-f", str(self.conf), "-L", self.label, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def new_session(self, name: str, argv: list[str], *, cwd: Path, width: int = 120,
                    height: int = 40) -> None:
        self.run(
            "new-session", "-d", "-s", name, "-x", str(width), "-y", str(height), "-c", str(cwd),
            shlex.join(argv),
        )

    def capture(self, name: str, *, ansi: bool = False) -> str:
        args = ["capture-pane", "-p", "-t", f"={name}:"]
        if ansi:
            args.insert(2, "-e")
        return self.run(*args).stdout

    def send_text(self, name: str, text: str) -> None:
        self.run("send-keys", "-t", f"={name}:", "-l", text)

    def send_keys(self, name: str, *keys: str) -> None:
        self.run("send-keys", "-t", f"={name}:", *keys)

    def pane_dead(self, name: str) -> bool:
        out = self.run("display-message", "-p", "-t", f"={name}:", "#{pane_dead}",
                       check=False).stdout.strip()
        return out == "1"

    def kill(self) -> None:
        self.run("kill-server", check=False)
        sock = self.tmpdir / f"tmux-{os.getuid()}" / self.label
        try:
            sock.unlink()
        except OSError:
            pass


def wait_for(predicate, *, timeout: float | None = None, interval: float = 0.1,
             message: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; return it or raise TimeoutError
    (the shared poller of tests/support/polling.py, with its deadline)."""
    return retry_until(predicate, timeout=timeout, interval=interval, message=message,
                       error=TimeoutError)
