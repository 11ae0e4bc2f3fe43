"""Shared fixtures: every test gets its own PLANEAI_HOME and real git repos in tmp_path."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

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
def private_tmux():
    """A private tmux server: a random -L socket name and a short TMUX_TMPDIR of its own
    (socket paths are length-limited); the server is killed and the dir removed at teardown."""
    socket = f"pt-{secrets.token_hex(4)}"
    tmpdir = Path("/tmp") / f"pt-{secrets.token_hex(3)}"
    tmpdir.mkdir()
    yield socket, tmpdir
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True,
                   env={**os.environ, "TMUX_TMPDIR": str(tmpdir)})
    shutil.rmtree(tmpdir, ignore_errors=True)


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


def retry_until(fn: Callable[[], object], timeout: float = 30.0, interval: float = 0.02,
                message: str = "condition"):
    """Poll ``fn`` until it returns something truthy; fail with ``message`` at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}; last={last!r}")


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
