"""What git has registered: the worktree list, and the lock and retry around changing that
shared metadata (see the package doc on concurrency)."""

from __future__ import annotations

import fcntl
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from planeai.errors import WorktreeError
from planeai.git.safe_git import git, last_error_line

LOCK_NAME = "planeai-worktree.lock"
_LOCK_ERRORS = re.compile(
    r"could not lock config file|Unable to create '[^']*\.lock'|cannot lock ref|"
    r"unable to lock|index\.lock", re.I)


@dataclass
class Worktree:
    path: Path
    branch: str            # short name ("planeai/PLA-1-x"); "" when detached or bare
    head: str              # commit id ("" for an unborn branch)
    created: bool          # True when ensure_worktree made it in this call
    bare: bool = False
    detached: bool = False
    locked: str | None = None     # lock reason ("" if locked without one)
    prunable: str | None = None   # git's reason when the directory is gone
    copied: list[str] = field(default_factory=list)  # copy_ignored results (repo-relative)


def list_worktrees(repo: Path | str) -> list[Worktree]:
    """All registered worktrees of ``repo`` (main first), from ``git worktree list --porcelain``."""
    out = git(repo, "worktree", "list", "--porcelain", "-z").stdout
    result: list[Worktree] = []
    cur: Worktree | None = None
    for field_ in out.split("\0"):
        if not field_:
            if cur is not None:
                result.append(cur)
                cur = None
            continue
        key, _, value = field_.partition(" ")
        if key == "worktree":
            cur = Worktree(path=Path(value), branch="", head="", created=False)
        elif cur is None:
            continue
        elif key == "HEAD":
            cur.head = value
        elif key == "branch":
            cur.branch = value[len("refs/heads/"):] if value.startswith("refs/heads/") else value
        elif key == "bare":
            cur.bare = True
        elif key == "detached":
            cur.detached = True
        elif key == "locked":
            cur.locked = value
        elif key == "prunable":
            cur.prunable = value
    if cur is not None:
        result.append(cur)
    if result and set(result[0].head) == {"0"}:
        result[0].head = ""
    for wt in result:
        if set(wt.head) == {"0"}:
            wt.head = ""
    return result


def _same_path(a: Path, b: Path) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _find(wts: list[Worktree], path: Path) -> Worktree | None:
    return next((w for w in wts if _same_path(w.path, path)), None)


# --------------------------------------------------------------------------- locking

@contextmanager
def repo_lock(common_dir: Path, timeout: float = 300) -> Iterator[None]:
    """Exclusive flock on ``<common_dir>/planeai-worktree.lock`` (threads and processes)."""
    lock_path = common_dir / LOCK_NAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise WorktreeError(f"timed out after {timeout:g}s waiting for {lock_path}")
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _git_retry(cwd: Path, *args: str, attempts: int = 30,
               before_retry: Callable[[], None] | None = None) -> None:
    """Run a metadata-mutating git command, retrying while another git holds a lock file."""
    delay = 0.02
    for n in range(attempts):
        proc = git(cwd, *args, check=False)
        if proc.returncode == 0:
            return
        if n + 1 < attempts and _LOCK_ERRORS.search(proc.stderr):
            if before_retry is not None:
                before_retry()  # e.g. drop the branch a half-done `worktree add -b` left
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
            continue
        raise WorktreeError(f"git {' '.join(args[:2])} failed: {last_error_line(proc.stderr)}")


def _ref_oid(repo: Path, ref: str) -> str | None:
    proc = git(repo, "rev-parse", "-q", "--verify", f"{ref}^{{commit}}", check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None
