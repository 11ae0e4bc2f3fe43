"""Is a provider usable here, before an agent is started with nobody watching?

The binary must be on PATH, and the agent must be able to talk to its model: one of its
``secrets`` is set (in the environment, or stored with `planeai secret set`: the caller
passes ``stored``), or its login check says it is logged in (``login_check``: a command
whose exit status 0 says so, e.g. ``codex login status``; ``login_files``: files of which
one existing says so). A provider file that declares neither is taken at its word (its own
screen tells, and a login screen reads as needs input). The dispatcher, `planeai run` and
`planeai provider check` ask the same function.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from planeai.providers import Provider, default_shell

LOGIN_CHECK_TIMEOUT = 20.0


@dataclass(frozen=True)
class Usability:
    binary: str | None          # its path, None when not installed
    logged_in: bool | None      # None: nothing to check (no secrets, no login check)
    secrets_set: tuple[str, ...]
    reason: str | None          # why it is not usable, None when it is


def _binary(provider: Provider, env: dict[str, str]) -> str | None:
    if provider.name == "shell":
        return default_shell()
    return shutil.which(provider.binary, path=env.get("PATH", os.defpath))


def _login_files(provider: Provider, env: dict[str, str]) -> bool:
    home = env.get("HOME") or os.path.expanduser("~")
    for f in provider.login_files:
        path = Path(home, f[2:]) if f.startswith("~/") else Path(f)
        if path.exists():
            return True
    return False


def _login_command(provider: Provider, env: dict[str, str]) -> bool:
    try:
        r = subprocess.run(list(provider.login_check), env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=LOGIN_CHECK_TIMEOUT, cwd=env.get("HOME") or None)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


Stored = Callable[[], Iterable[str]] | None  # names stored for the provider, asked lazily


def usability(provider: Provider, env: dict[str, str] | None = None,
              stored: Stored = None) -> Usability:
    env = dict(os.environ) if env is None else env
    binary = _binary(provider, env)
    if binary is None:
        hint = f" ({provider.install_hint})" if provider.install_hint else ""
        return Usability(None, None, (), f"{provider.name} is not installed: "
                                         f"{provider.binary!r} is not on PATH{hint}")
    have = tuple(s for s in provider.secrets if env.get(s))
    if not have and provider.secrets and stored is not None:
        have = tuple(stored())
    if have:
        return Usability(binary, True, have, None)
    checks = bool(provider.login_check or provider.login_files)
    if not checks:
        return Usability(binary, None, (), None)
    if (provider.login_files and _login_files(provider, env)) or \
            (provider.login_check and _login_command(provider, env)):
        return Usability(binary, True, (), None)
    how = provider.login_hint
    if not how:
        how = (f"`{' '.join(provider.login_check)}` says no" if provider.login_check
               else "log in to it")
        if provider.secrets:
            how += "; log in or set " + " / ".join(provider.secrets)
    return Usability(binary, False, (), f"{provider.name} is not logged in: {how}")


def unusable(provider: Provider, env: dict[str, str] | None = None,
             stored: Stored = None) -> str | None:
    """Why ``provider`` cannot run an agent here, or None when it can."""
    return usability(provider, env, stored).reason


@dataclass(frozen=True)
class CheckResult:
    """What `planeai provider check` shows: usability plus the installed version."""
    provider: str
    binary: str | None
    version: str | None
    secrets_ok: bool
    missing_secrets: tuple[str, ...]
    logged_in: bool | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.reason is None


def check(provider: Provider, env: dict[str, str] | None = None,
          stored: Stored = None) -> CheckResult:
    env = dict(os.environ) if env is None else env
    u = usability(provider, env, stored)
    version = None
    if u.binary and provider.version_command:
        try:
            out = subprocess.run(list(provider.version_command), capture_output=True, text=True,
                                 timeout=20, stdin=subprocess.DEVNULL, env=env)
            lines = (out.stdout or out.stderr).strip().splitlines()
            version = lines[0].strip() if lines else None
        except (OSError, subprocess.SubprocessError):
            version = None
    secrets_ok = not provider.secrets or bool(u.secrets_set)
    return CheckResult(provider.name, u.binary, version, secrets_ok,
                       () if secrets_ok else tuple(provider.secrets), u.logged_in, u.reason)
