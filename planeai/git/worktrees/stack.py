"""Work that builds on work: a new task worktree starts from what it stands on.

A task blocked by tasks that are done but not merged into its base yet would otherwise start
without their change. ``stack_onto`` merges those branches into the freshly made worktree's
branch, one merge commit each, before the agent runs. A conflict leaves nothing half-merged
(``git merge --abort``) and names the files, so the caller can hold the task with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from planeai.errors import WorktreeError
from planeai.git.safe_git import git


class StartPointConflict(WorktreeError):
    """The work a task stands on does not merge cleanly: a person must combine it first."""


@dataclass(frozen=True)
class Underlying:
    """Another task's branch this worktree must contain."""
    task_key: str
    branch: str


def is_contained(worktree: Path | str, branch: str) -> bool:
    """Is ``branch`` already part of the worktree's HEAD (merged into its start point)?"""
    r = git(worktree, "merge-base", "--is-ancestor", f"refs/heads/{branch}", "HEAD", check=False)
    return r.returncode == 0


def branch_exists(repo: Path | str, branch: str) -> bool:
    r = git(repo, "rev-parse", "-q", "--verify", f"refs/heads/{branch}^{{commit}}", check=False)
    return r.returncode == 0


def _identity_env(worktree: Path | str) -> dict[str, str]:
    """The user's own identity commits the merges; planeai's only when git has none."""
    if git(worktree, "config", "user.email", check=False).stdout.strip():
        return {}
    return {"GIT_AUTHOR_NAME": "planeai", "GIT_AUTHOR_EMAIL": "planeai@localhost",
            "GIT_COMMITTER_NAME": "planeai", "GIT_COMMITTER_EMAIL": "planeai@localhost"}


def stack_onto(worktree: Path | str, task_key: str, under: list[Underlying]) -> list[str]:
    """Merge each branch of ``under`` not yet contained into the worktree's branch (a new
    one: it holds nothing else); returns the task keys merged. Raises StartPointConflict with
    the branch back where it started."""
    merged = []
    env = _identity_env(worktree)
    start = git(worktree, "rev-parse", "HEAD").stdout.strip()
    for u in under:
        if is_contained(worktree, u.branch):
            continue
        r = git(worktree, "merge", "--no-ff", "--no-edit", "-m",
                f"{task_key}: start from {u.task_key} ({u.branch})", f"refs/heads/{u.branch}",
                check=False, env=env, timeout=300)
        if r.returncode != 0:
            files = git(worktree, "diff", "--name-only", "--diff-filter=U",
                        check=False).stdout.split()
            git(worktree, "merge", "--abort", check=False)
            if merged:  # the new branch goes back to its start point: all or nothing
                git(worktree, "reset", "-q", "--hard", start)
            what = f"conflicts in {', '.join(files[:5])}" if files else "does not merge"
            raise StartPointConflict(
                f"{task_key} starts from {u.task_key}'s work, but {u.branch} {what}; merge "
                f"{u.task_key} into the base first (or resolve it by hand), then move "
                f"{task_key} back to todo")
        merged.append(u.task_key)
    return merged
