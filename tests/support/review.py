"""A project with agent sessions in real worktrees, driven through the CLI in subprocesses
(the echo agent on a private tmux server): what the review and delivery tests start from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

GIT_ENV = {"GIT_AUTHOR_NAME": "planeai test", "GIT_AUTHOR_EMAIL": "test@planeai.invalid",
           "GIT_COMMITTER_NAME": "planeai test", "GIT_COMMITTER_EMAIL": "test@planeai.invalid"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env={**os.environ, **GIT_ENV}).stdout.strip()


class Project:
    def __init__(self, repo: Path, env: dict[str, str]) -> None:
        self.repo, self.env = repo, env

    def cli(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "planeai.cli.main", *args],
                              env=env or self.env, cwd=self.repo, capture_output=True,
                              text=True, timeout=120)

    def ok(self, *args: str) -> str:
        r = self.cli(*args)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout

    def task(self, title: str, description: str = "") -> str:
        args = ["task", "add", title] + (["-d", description] if description else [])
        return self._key(self.ok(*args))

    @staticmethod
    def _key(out: str) -> str:
        return next(w for w in out.split() if "-" in w and w.split("-")[-1].isdigit())

    def start(self, key: str) -> Path:
        """A session for ``key`` in its own worktree; returns the worktree."""
        self.ok("session", "start", key, "--provider", "echoer", "--backend", "tmux")
        return self.worktree(key)

    def sessions(self) -> list[dict]:
        return json.loads(self.ok("session", "list", "--all", "--json"))

    def worktree(self, key: str) -> Path:
        mine = [s for s in self.sessions() if s["task"] == key]
        return Path(mine[-1]["worktree"])


def make_project(repo: Path, tmux_cli_env, planeai_home: Path, config: str = "") -> Project:
    from conftest import install_echo_agent

    install_echo_agent(planeai_home / "config" / "providers")
    p = Project(repo, tmux_cli_env(config))
    p.ok("project", "add", str(repo))
    return p
