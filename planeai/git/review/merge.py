"""Landing a branch in its base locally, without disturbing anybody's checkout.

The result is computed away from every checkout: ``git merge-tree --write-tree`` (a merge or a
squash: the merged tree, then ``commit-tree``), or for a rebase ``cherry-pick`` in a temporary
detached worktree (git 2.39 has no ``merge-tree --merge-base`` to replay commits without one).
Then the base branch moves, and only then:

* when a checkout has the base branch checked out (usually the main one), by
  ``git merge --ff-only <result>`` *in that checkout*, and only when it is clean, so its files
  follow the branch; a dirty checkout is refused, never touched;
* otherwise by ``git update-ref`` with the old value (refused if the base moved meanwhile).

A conflict writes no ref: the base and the branch keep their exact commits (the result says
which files conflicted, with the hashes before and after)."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from planeai.errors import ConflictError, GitError
from planeai.git.safe_git import git, git_common_dir, last_error_line, repo_root
from planeai.git.worktrees.registry import _git_retry, _ref_oid, list_worktrees, repo_lock

WAYS = ("merge", "squash", "rebase")


@dataclass
class MergeResult:
    ok: bool
    how: str                  # merge | squash | rebase
    base: str                 # branch names
    branch: str
    base_before: str
    branch_before: str
    base_after: str = ""
    branch_after: str = ""
    commit: str | None = None         # the base's new tip (None: nothing to merge)
    conflicts: list[str] = field(default_factory=list)
    moved_by: str = ""                # how the base moved (which checkout, or the ref)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _oid(repo: Path, ref: str) -> str:
    oid = _ref_oid(repo, ref)
    if oid is None:
        raise GitError(f"{ref} is not a commit in {repo}")
    return oid


def _dirty(path: Path) -> list[str]:
    out = git(path, "status", "--porcelain", "-z", "--untracked-files=no").stdout
    return [e[3:] for e in out.split("\0") if len(e) > 3]


def _holder(main: Path, branch: str):
    return next((w for w in list_worktrees(main) if w.branch == branch and not w.prunable), None)


def check_base_checkout(repo: Path | str, base: str) -> None:
    """Refuse (ConflictError) when the checkout holding ``base`` has uncommitted changes."""
    main = repo_root(repo)
    holder = _holder(main, base)
    if holder is not None:
        dirty = _dirty(holder.path)
        if dirty:
            raise ConflictError(
                f"{holder.path} has {base} checked out with uncommitted changes "
                f"({', '.join(dirty[:3])}{', ...' if len(dirty) > 3 else ''}); commit or stash "
                f"them there first: planeai moves {base} only in a clean checkout")


def _merge_tree(main: Path, base_oid: str, branch_oid: str) -> tuple[str | None, list[str]]:
    proc = git(main, "merge-tree", "--write-tree", "-z", "--name-only", "--no-messages",
               base_oid, branch_oid, check=False, timeout=3600)
    parts = [p for p in proc.stdout.split("\0") if p]
    if proc.returncode == 0 and parts:
        return parts[0], []
    if proc.returncode == 1:
        return None, sorted(set(parts[1:]))
    raise GitError(f"git merge-tree failed in {main}: {last_error_line(proc.stderr)}")


def _rebase(main: Path, base_oid: str, branch_oid: str) -> tuple[str | None, list[str]]:
    """Replay base..branch onto base in a temporary detached worktree; (new tip, conflicts)."""
    commits = git(main, "rev-list", "--reverse", "--no-merges", f"{base_oid}..{branch_oid}"
                  ).stdout.split()
    if not commits:
        return base_oid, []
    common = git_common_dir(main)
    tmp = Path(tempfile.mkdtemp(prefix="planeai-rebase-"))
    os.rmdir(tmp)
    with repo_lock(common):
        _git_retry(main, "worktree", "add", "--detach", str(tmp), base_oid)
    try:
        proc = git(tmp, "cherry-pick", "--keep-redundant-commits", *commits, check=False,
                   timeout=3600)
        if proc.returncode != 0:
            out = git(tmp, "diff", "--name-only", "-z", "--diff-filter=U").stdout
            conflicts = sorted({p for p in out.split("\0") if p})
            git(tmp, "cherry-pick", "--abort", check=False)
            if not conflicts:
                raise GitError(f"rebase onto {base_oid[:12]} failed: "
                               f"{last_error_line(proc.stderr)}")
            return None, conflicts
        return git(tmp, "rev-parse", "HEAD").stdout.strip(), []
    finally:
        with repo_lock(common):
            git(main, "worktree", "remove", "--force", str(tmp), check=False)
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
                git(main, "worktree", "prune", check=False)


def _move(main: Path, branch: str, new: str, old: str, *, keep: bool = False) -> str:
    """Point ``branch`` at ``new``: in the checkout that has it (its files follow), else by
    update-ref with the old value. Returns how."""
    holder = _holder(main, branch)
    if holder is not None:
        if keep:  # the task's own worktree after a rebase: same content, new commits
            git(holder.path, "reset", "-q", "--keep", new)
        else:
            proc = git(holder.path, "merge", "--ff-only", "-q", new, check=False, timeout=3600)
            if proc.returncode != 0:
                raise ConflictError(f"could not move {branch} in {holder.path}: "
                                    f"{last_error_line(proc.stderr)}")
        return f"in the checkout {holder.path} (it has {branch} checked out)"
    proc = git(main, "update-ref", f"refs/heads/{branch}", new, old, check=False)
    if proc.returncode != 0:
        raise ConflictError(f"{branch} moved while merging; nothing was changed: "
                            f"{last_error_line(proc.stderr)}")
    return "by update-ref (no checkout has it checked out)"


def land(repo: Path | str, branch: str, base: str, how: str, message: str) -> MergeResult:
    """Merge ``branch`` into ``base`` (``how``: merge, squash or rebase) with ``message`` for
    the merge or squash commit. A conflict returns ``ok=False`` with the files and changes
    nothing."""
    if how not in WAYS:
        raise ConflictError(f"unknown way to merge {how!r}; accepted: {', '.join(WAYS)}")
    main = repo_root(repo)
    if _ref_oid(main, f"refs/heads/{base}") is None:
        raise GitError(f"base {base!r} is not a local branch of {main}")
    check_base_checkout(main, base)
    base_oid = _oid(main, f"refs/heads/{base}")
    branch_oid = _oid(main, f"refs/heads/{branch}")
    res = MergeResult(False, how, base, branch, base_oid, branch_oid)
    if git(main, "merge-base", "--is-ancestor", branch_oid, base_oid,
           check=False).returncode == 0:
        res.ok, res.base_after, res.branch_after = True, base_oid, branch_oid
        res.moved_by = f"nothing to do: {branch} is already in {base}"
        return res
    if how == "rebase":
        new, conflicts = _rebase(main, base_oid, branch_oid)
    else:
        tree, conflicts = _merge_tree(main, base_oid, branch_oid)
        new = None
        if tree is not None:
            parents = ["-p", base_oid] + (["-p", branch_oid] if how == "merge" else [])
            new = git(main, "commit-tree", tree, *parents, "-F", "-",
                      input=message.encode("utf-8")).stdout.strip()
    if new is None:
        res.conflicts = conflicts
    else:
        res.moved_by = _move(main, base, new, base_oid)
        if how == "rebase" and new != branch_oid:
            _move(main, branch, new, branch_oid, keep=True)
        res.ok, res.commit = True, new
    res.base_after = _oid(main, f"refs/heads/{base}")
    res.branch_after = _oid(main, f"refs/heads/{branch}")
    return res
