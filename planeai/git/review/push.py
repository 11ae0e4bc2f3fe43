"""Pushing a task's branch and opening a pull request with ``gh`` (GitHub's CLI) when it is
installed; without it, the compare page of a known host is the next step."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from planeai.errors import ConflictError, GitError
from planeai.git.safe_git import git, last_error_line


def remote_url(repo: Path | str, remote: str) -> str:
    proc = git(repo, "remote", "get-url", "--", remote, check=False)
    if proc.returncode != 0:
        known = git(repo, "remote").stdout.split()
        raise GitError(f"no remote {remote!r} in {repo}; remotes: {', '.join(known) or 'none'}")
    return proc.stdout.strip()


def push_branch(repo: Path | str, remote: str, branch: str) -> None:
    """``git push --set-upstream <remote> <branch>`` (so its commits count as pushed)."""
    remote_url(repo, remote)
    proc = git(repo, "push", "--porcelain", "--set-upstream", remote,
               f"refs/heads/{branch}:refs/heads/{branch}", check=False, timeout=600)
    if proc.returncode != 0:
        raise ConflictError(f"git push to {remote} failed: "
                            f"{last_error_line(proc.stderr or proc.stdout)}")


_HOSTED = re.compile(r"^(?:https?://(?:[^@/]+@)?|ssh://(?:[^@/]+@)?|[^@/]+@)"
                     r"(github\.com|gitlab\.com|bitbucket\.org)[:/](.+?)(?:\.git)?/?$")


def compare_url(url: str, base: str, branch: str) -> str | None:
    """The web page that opens a pull request for ``branch`` on a known host, else None."""
    m = _HOSTED.match(url.strip())
    if not m:
        return None
    host, path = m.group(1), m.group(2)
    if host == "github.com":
        return f"https://github.com/{path}/compare/{base}...{branch}?expand=1"
    if host == "gitlab.com":
        return (f"https://gitlab.com/{path}/-/merge_requests/new?"
                f"merge_request%5Bsource_branch%5D={branch}&"
                f"merge_request%5Btarget_branch%5D={base}")
    return f"https://bitbucket.org/{path}/pull-requests/new?source={branch}&dest={base}"


def gh_path() -> str | None:
    return shutil.which("gh")


def open_pr(repo: Path | str, *, base: str, branch: str, title: str, body: str,
            timeout: float = 120) -> str:
    """``gh pr create`` (argv, no shell; title and body are plain arguments); the PR URL."""
    gh = gh_path()
    if gh is None:
        raise GitError("gh is not installed")
    argv = [gh, "pr", "create", "--head", branch, "--base", base, "--title", title,
            "--body", body]
    try:
        proc = subprocess.run(argv, cwd=str(repo), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ConflictError(f"gh pr create did not finish in {timeout:g}s") from None
    if proc.returncode != 0:
        raise ConflictError(f"gh pr create failed: {last_error_line(proc.stderr or proc.stdout)}")
    urls = re.findall(r"https?://\S+", proc.stdout)
    if not urls:
        raise ConflictError(f"gh pr create printed no URL: {proc.stdout.strip()[:200]!r}")
    return urls[-1]
