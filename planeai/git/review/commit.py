"""All of a worktree's changes (untracked files included) as one commit on its branch.

The author and committer come from the user's git config, as for any ``git commit``; hooks
stay off (the hardened runner), so nothing in the worktree runs."""

from __future__ import annotations

from pathlib import Path

from planeai.errors import ConflictError
from planeai.git.safe_git import git, last_error_line


def has_changes(worktree: Path | str) -> bool:
    out = git(worktree, "status", "--porcelain", "-z", "--untracked-files=all").stdout
    return bool(out.strip("\0"))


def commit_all(worktree: Path | str, message: str) -> str | None:
    """Stage everything (``git add -A``) and commit it; the new commit, or None when there
    was nothing to commit."""
    worktree = Path(worktree)
    if not has_changes(worktree):
        return None
    git(worktree, "add", "-A", "--", ".", timeout=3600)
    proc = git(worktree, "commit", "-q", "--no-verify", "-F", "-", check=False,
               input=message.encode("utf-8"), timeout=3600)
    if proc.returncode != 0:
        if "nothing to commit" in proc.stdout + proc.stderr:
            return None
        err = last_error_line(proc.stderr or proc.stdout)
        if "identity" in proc.stderr or "user.email" in proc.stderr:
            err = ("git does not know who you are: set it with "
                   "`git config --global user.name NAME` and `git config --global user.email "
                   "EMAIL`")
        raise ConflictError(f"commit in {worktree} failed: {err}")
    return git(worktree, "rev-parse", "HEAD").stdout.strip()
