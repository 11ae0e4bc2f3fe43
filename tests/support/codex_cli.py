"""Run the real Codex CLI (``@openai/codex``) offline against
:mod:`tests.support.openai_endpoint`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["codex_bin", "codex_env", "codex_argv", "reap_codex_processes"]

# Interactive codex 0.169 otherwise starts (or reuses) a detached `codex app-server` daemon under
# $CODEX_HOME that outlives the TUI and its tmux server. With any `-c key=value` override on the
# command line it runs an embedded app-server instead (measured), which dies with the TUI.
EMBEDDED_APP_SERVER_ARGS = ["-c", "check_for_update_on_startup=false"]


def codex_argv(*args: str) -> list[str]:
    """argv for interactive ``codex`` that keeps its app-server embedded (no stray daemon)."""
    return ["codex", *EMBEDDED_APP_SERVER_ARGS, *args]


def reap_codex_processes(home: Path) -> list[int]:
    """Kill (SIGTERM, by pid) any process whose command line mentions ``home`` — e.g. a detached
    ``codex app-server`` daemon under ``home/.codex``. Returns the pids signalled."""
    import signal

    needle = str(Path(home)).encode()
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            try:
                os.kill(int(entry.name), signal.SIGTERM)
                killed.append(int(entry.name))
            except OSError:
                pass
    return killed


def codex_bin() -> str | None:
    return shutil.which("codex")


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def codex_env(home: Path, project_dirs: list[Path], base_url: str,
              api_key: str = "sk-test-planeai-codex") -> dict[str, str]:
    """Write ``home/.codex/config.toml`` (a custom Responses provider at ``base_url``, the
    projects trusted, update check off) and return the env to run ``codex`` with.

    With this, interactive ``codex`` starts straight at its ``›`` prompt (measured, 0.169.0).
    """
    home = Path(home)
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    lines = [
        'model = "gpt-5-codex"',
        'model_provider = "scripted"',
        "check_for_update_on_startup = false",
        "",
        "[model_providers.scripted]",
        'name = "scripted"',
        f"base_url = {_toml_str(base_url)}",
        'wire_api = "responses"',
        'env_key = "OPENAI_API_KEY"',
        "request_max_retries = 0",
        "stream_max_retries = 0",
        "",
    ]
    for d in project_dirs:
        lines += [f"[projects.{_toml_str(str(Path(d).resolve()))}]", 'trust_level = "trusted"', ""]
    (codex_home / "config.toml").write_text("\n".join(lines))

    env = {k: v for k, v in os.environ.items()
           if k in ("PATH", "LANG", "LC_ALL", "TERM", "TZ", "USER", "LOGNAME", "SHELL")}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    env.setdefault("TERM", "xterm-256color")
    env.update({"HOME": str(home), "CODEX_HOME": str(codex_home), "OPENAI_API_KEY": api_key})
    return env
