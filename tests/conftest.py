"""Shared fixtures: every test gets its own PLANEAI_HOME and real git repos in tmp_path.

Layers, each built on the one before: ``planeai_home`` (autouse: PLANEAI_HOME and git's
identity) -> ``user_home`` (HOME too) -> ``private_tmux`` (a tmux server on a random socket)
-> ``tmux_cli_env`` (an environment that runs the CLI against that server). Waiting goes
through ``retry_until`` (tests/support/polling.py), whose DEADLINE is the one default.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Callable, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

# the one polling helper and deadline (tests import it from here or from tests.support.polling)
from support.polling import DEADLINE, Deadline, retry_until, retry_until_async  # noqa: E402

__all__ = ["DEADLINE", "Deadline", "retry_until", "retry_until_async"]

GIT_ENV = {
    "GIT_AUTHOR_NAME": "planeai test", "GIT_AUTHOR_EMAIL": "test@planeai.invalid",
    "GIT_COMMITTER_NAME": "planeai test", "GIT_COMMITTER_EMAIL": "test@planeai.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def make_repo(path: Path, *, commit: bool = True, branch: str = "main") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "init", "-q", "-b", branch, str(path)], check=True, env=env)
    if commit:
        (path / "README.md").write_text("hello\n")
        subprocess.run(["git", "-C", str(path), "add", "."], check=True, env=env)
        subprocess.run(["git", "-C", str(path), "commit", "-q", "-m", "init"], check=True, env=env)
    return path


@pytest.fixture(autouse=True)
def planeai_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "planeai-home"
    monkeypatch.setenv("PLANEAI_HOME", str(home))
    for var in ("PLANEAI_PROJECT", "PLANEAI_TASK_KEY", "PLANEAI_SESSION_ID", "PLANEAI_CONFIG",
                "PLANEAI_WORKTREE"):
        monkeypatch.delenv(var, raising=False)
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    return home


@pytest.fixture
def user_home(tmp_path: Path, planeai_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME (``tmp_path/private-home``, a name no test makes itself) on top of
    :func:`planeai_home`'s PLANEAI_HOME: nothing a test starts reads the real user's dotfiles."""
    home = tmp_path / "private-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


class PrivateTmux(NamedTuple):
    """A private tmux server: a random ``-L`` socket name and a short TMUX_TMPDIR of its own
    (socket paths are length-limited). Unpacks as ``socket, tmpdir``."""

    socket: str
    tmpdir: Path

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (os.environ by default) pointed at this server, outside any other tmux."""
        e = {**(os.environ if base is None else base), "TMUX_TMPDIR": str(self.tmpdir)}
        e.pop("TMUX", None)
        e.pop("TMUX_PANE", None)
        return e

    def kill(self) -> None:
        """Stop the server (if it runs) and remove its dir; never raises, so a teardown cannot
        hide the test's own failure."""
        try:
            subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                           env=self.env(), timeout=30)
        except (OSError, subprocess.SubprocessError):
            pass
        shutil.rmtree(self.tmpdir, ignore_errors=True)


@pytest.fixture
def private_tmux(user_home: Path):
    """Layer 2: a private tmux server (see :class:`PrivateTmux`) for a test that has its own
    user home; the server is killed and its dir removed at teardown."""
    tmux = PrivateTmux(f"pt-{secrets.token_hex(4)}", Path("/tmp") / f"pt-{secrets.token_hex(3)}")
    tmux.tmpdir.mkdir()
    try:
        yield tmux
    finally:
        tmux.kill()


@pytest.fixture
def tmux_cli_env(tmp_path: Path, private_tmux: PrivateTmux) -> Callable[..., dict[str, str]]:
    """Layer 3: ``make(config="", **env) -> env`` for running the CLI in a subprocess against
    the private tmux server: writes ``config`` plus ``[tmux] socket`` to a planeai.toml named
    by PLANEAI_CONFIG; SHELL is /bin/bash unless ``env`` says otherwise."""

    def make(config: str = "", **extra: str) -> dict[str, str]:
        cfg = tmp_path / "planeai.toml"
        cfg.write_text(f'{config}[tmux]\nsocket = "{private_tmux.socket}"\n')
        env = private_tmux.env()
        env.update(PLANEAI_CONFIG=str(cfg), SHELL="/bin/bash")
        env.update(extra)
        return env

    return make


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "planeai")


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, capsys) -> Callable:
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    from planeai.cli.main import main

    def run(*args: str, cwd: Path | None = None, stdin: bytes | None = None):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        if stdin is not None:
            import io

            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse usage errors and --help
            code = e.code if isinstance(e.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


def planeai_cmd() -> list[str]:
    return [sys.executable, "-m", "planeai.cli.main"]


def run_subprocess(*args: str, cwd: Path | None = None, env: dict | None = None,
                   input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(planeai_cmd() + list(args), cwd=cwd, env=env or os.environ.copy(),
                          input=input, capture_output=True, timeout=timeout)


ECHO_AGENT = ROOT / "tests" / "support" / "echo_agent.py"


def install_echo_agent(providers_dir: Path, name: str = "echoer") -> str:
    """A user provider file for tests/support/echo_agent.py: an agent that prints its prompt
    and echoes what it is sent, literally (so a test can see exactly what reached it)."""
    providers_dir.mkdir(parents=True, exist_ok=True)
    (providers_dir / f"{name}.toml").write_text(
        f'name = "{name}"\nbinary = "{sys.executable}"\n'
        f'command = ["{sys.executable}", "{ECHO_AGENT}", "{{prompt}}"]\n'
        '[status]\nidle = ["^> ?\\\\Z"]\n')
    return name


def trusted_repo_provider(repo: Path, name: str, toml: str) -> Path:
    """A provider file ``name``.toml in the repo's own .planeai/providers, and the repo
    trusted (a repo's provider files run nothing until then). Returns the file."""
    from planeai.services import trust

    pdir = Path(repo) / ".planeai" / "providers"
    pdir.mkdir(parents=True, exist_ok=True)
    path = pdir / f"{name}.toml"
    path.write_text(toml)
    trust.trust(trust.read_content(repo))
    return path


@pytest.fixture(scope="module")
def sshd():
    """A real OpenSSH sshd on 127.0.0.1 whose second user stands in for another machine
    (tests/support/sshd.py), one per test module."""
    from support.sshd import start_sshd

    server = start_sshd()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def canary():
    """A path hostile text names (``touch CANARY``): it must not exist after the test."""
    path = Path("/tmp") / f"pwned-{uuid.uuid4()}"
    yield path
    assert not path.exists(), "hostile text ran as code"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With CI=true a test that would skip (a missing agent CLI, tmux, Docker) fails instead:
    CI must install everything, and a green run must mean every test really ran."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI", "").lower() == "true" and \
            not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true (CI must provide what it needs): {reason}"
