"""Creating (or reusing) a task's worktree: register under the repo lock, populate outside it,
undo everything on failure; copy the ignored files a task needs from the main worktree."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Sequence

from planeai.errors import GitError, WorktreeError
from planeai.git.safe_git import default_branch, git, git_common_dir, repo_root
from planeai.git.worktrees.names import validate_branch_name, validate_worktree_name
from planeai.git.worktrees.registry import (
    Worktree,
    _find,
    _git_retry,
    _ref_oid,
    list_worktrees,
    repo_lock,
)

log = logging.getLogger("planeai.git")

# `checkout.workers` for populating new worktrees (git's parallel checkout; git only uses it
# above checkout.thresholdForParallelism = 100 files).  2 measured 0.15-0.2x the time of a
# sequential checkout of 20,000 files here; None/1 = sequential like plain `git worktree add`.
CHECKOUT_WORKERS: int | None = 2


def _check_copy_patterns(patterns: Sequence[str]) -> list[str]:
    checked = []
    for pat in patterns:
        pp = PurePosixPath(pat)
        if (not pat or not pp.parts or pp.is_absolute() or pat.startswith("~")
                or ".." in pp.parts or "\0" in pat):
            raise WorktreeError(f"copy_ignored path {pat!r} must be relative and stay inside the "
                                "repository")
        checked.append(pat)
    return checked


def ensure_worktree(repo: Path | str, root: Path | str, name: str, branch: str,
                    base: str | None = None, *, copy_ignored: Sequence[str] = ()) -> Worktree:
    """The worktree ``root/<repo-name>/<name>`` on ``branch``: reused, attached or created.

    * registered there on ``branch`` -> returned with ``created=False``;
    * ``branch`` exists but has no worktree -> checked out there;
    * otherwise ``branch`` is made from ``base`` (default branch if None) with ``--no-track``.
    ``copy_ignored`` (repo-relative paths/globs) copies git-ignored files from the main
    worktree into a newly created one, never overwriting.
    """
    validate_worktree_name(name)
    validate_branch_name(branch)
    patterns = _check_copy_patterns(copy_ignored)
    main = repo_root(repo)
    target = Path(os.path.abspath(Path(root).expanduser())) / main.name / name

    # Fast path without the lock: already there.
    wts = list_worktrees(main)
    found = _reuse(wts, target, branch)
    if found:
        return found

    common = git_common_dir(main)
    with repo_lock(common):
        wts = list_worktrees(main)
        found = _reuse(wts, target, branch)
        if found:
            return found
        if any(w.prunable for w in wts) or (_find(wts, target) and not target.exists()):
            git(main, "worktree", "prune")
            wts = list_worktrees(main)
        holder = next((w for w in wts if w.branch == branch), None)
        if holder is not None:
            raise WorktreeError(f"branch {branch} is already checked out in {holder.path}")
        if target.exists() or target.is_symlink():
            if not target.is_dir() or target.is_symlink() or any(target.iterdir()):
                raise WorktreeError(f"{target} exists and is not a worktree of {main}")
        target_existed = target.exists()

        made_branch_oid: str | None = None
        if _ref_oid(main, f"refs/heads/{branch}"):
            add_args = ["worktree", "add", "--no-checkout", str(target), branch]
        else:
            base_name = base or default_branch(main)
            base_oid = _ref_oid(main, base_name)
            if base_oid is None:
                raise WorktreeError(f"base {base_name!r} is not a commit in {main}")
            made_branch_oid = base_oid
            add_args = ["worktree", "add", "--no-checkout", "--no-track", "-b", branch,
                        str(target), base_oid]
        target.parent.mkdir(parents=True, exist_ok=True)
        def undo() -> None:
            _undo(main, target, target_existed, branch, made_branch_oid)

        try:
            _git_retry(main, *add_args, before_retry=undo)
        except BaseException:
            _undo(main, target, target_existed, branch, made_branch_oid)
            raise

    # Outside the lock: populate files (what `git worktree add` runs itself), copy ignored.
    try:
        _populate(target)
        copied = _copy_ignored(main, target, patterns) if patterns else []
    except BaseException:
        with repo_lock(common):
            _undo(main, target, target_existed, branch, made_branch_oid)
        raise
    head = git(target, "rev-parse", "-q", "--verify", "HEAD", check=False).stdout.strip()
    return Worktree(path=target, branch=branch, head=head, created=True, copied=copied)


def _reuse(wts: list[Worktree], target: Path, branch: str) -> Worktree | None:
    wt = _find(wts, target)
    if wt is None or wt.prunable or not target.is_dir():
        return None
    if wt.branch != branch:
        on = wt.branch or "a detached HEAD"
        raise WorktreeError(f"{target} is a worktree on {on}, not on {branch}")
    return Worktree(path=target, branch=branch, head=wt.head, created=False,
                    locked=wt.locked)


def _populate(target: Path) -> None:
    # Same command `git worktree add` runs after registering; hardened runner disables the
    # repo's filters/hooks.  No -q: errors only go to stderr anyway.
    workers = ("-c", f"checkout.workers={CHECKOUT_WORKERS}") if CHECKOUT_WORKERS else ()
    git(target, *workers, "reset", "--hard", "--no-recurse-submodules", "-q", timeout=3600)


def _undo(main: Path, target: Path, target_existed: bool, branch: str,
          made_branch_oid: str | None) -> None:
    """Remove what a failed creation left: registration, directory, branch we made."""
    try:
        wt = _find(list_worktrees(main), target)
        if wt is not None:
            git(main, "worktree", "remove", "--force", "--force", str(target), check=False)
        if target.is_symlink():
            target.unlink()
        elif target.exists():
            shutil.rmtree(target, ignore_errors=True)
        if target_existed:
            target.mkdir(parents=True, exist_ok=True)
        git(main, "worktree", "prune", check=False)
        if made_branch_oid:
            still_used = any(w.branch == branch for w in list_worktrees(main))
            if not still_used:
                # Only if it still points where we made it: never delete someone else's work.
                git(main, "update-ref", "-d", f"refs/heads/{branch}", made_branch_oid,
                    check=False)
    except GitError as e:  # cleanup must not hide the original error
        log.warning("cleanup after failed worktree creation of %s: %s", target, e)


def _copy_ignored(main: Path, target: Path, patterns: Sequence[str]) -> list[str]:
    main_real = Path(os.path.realpath(main))
    target_real = Path(os.path.realpath(target))
    candidates: list[str] = []
    for pat in patterns:
        try:
            matches = sorted(main.glob(pat))
        except (ValueError, NotImplementedError) as e:
            raise WorktreeError(f"copy_ignored pattern {pat!r} is not usable: {e}") from None
        for src in matches:
            rel = src.relative_to(main).as_posix()
            if rel.split("/")[0] == ".git":
                continue
            real = Path(os.path.realpath(src))
            if real != main_real and main_real not in real.parents:
                raise WorktreeError(f"copy_ignored: {rel} resolves outside the repository")
            if src.is_file() or src.is_dir():
                candidates.append(rel)
    if not candidates:
        return []
    proc = git(main, "check-ignore", "-z", "--stdin", check=False,
               input=("\0".join(candidates) + "\0").encode())
    if proc.returncode not in (0, 1):
        raise WorktreeError(f"copy_ignored: git check-ignore failed: {proc.stderr.strip()}")
    ignored = {p for p in proc.stdout.split("\0") if p}
    copied: list[str] = []
    for rel in candidates:
        if rel not in ignored:
            log.info("copy_ignored: %s is not ignored by git; not copied", rel)
            continue
        dst = target / rel
        parent_real = Path(os.path.realpath(dst.parent))
        if parent_real != target_real and target_real not in parent_real.parents:
            raise WorktreeError(f"copy_ignored: {rel} would be written outside the worktree")
        if dst.exists() or dst.is_symlink():
            continue  # never overwrite
        dst.parent.mkdir(parents=True, exist_ok=True)
        src = main / rel
        if src.is_dir():
            shutil.copytree(src, dst, symlinks=True)
        else:
            shutil.copy2(src, dst, follow_symlinks=False)
        copied.append(rel)
    return copied
