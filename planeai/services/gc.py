"""``planeai gc``: what planeai left behind and no one needs, with the disk each frees.

Candidates, in the projects' repos only and only under planeai's worktrees root:

* a worktree no session has, or whose session is archived (``stale``);
* an older session's worktree of a task that has a newer session (``retry leftover``), when
  that older session is not running;
* a ``planeai/`` branch that no worktree has checked out, whose task is done or deleted and
  whose commits are all in the base branch (``delivered``).

Nothing with unsaved work goes: a worktree whose removal would lose anything (the checks of
``session delete``) and a branch with commits the base lacks are listed as kept, with why.
The plan is computed once; ``apply`` removes exactly what a dry run listed."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from planeai.core import events as ev
from planeai.core.models import LIVE_STATES, SessionState, Status
from planeai.errors import NotFoundError, PlaneaiError

if TYPE_CHECKING:
    from planeai.services.sessions import SessionManager


@dataclass
class Item:
    kind: str            # worktree | branch
    what: str            # the path, or the branch name
    repo: str
    reason: str          # stale | retry leftover | delivered
    size: int = 0        # bytes on disk it frees
    keep: str | None = None   # set: it stays (unsaved work), why
    base: str = ""            # branches: the branch holding their commits

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def disk_usage(path: Path) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if name in filenames or os.path.islink(os.path.join(dirpath, name)):
                total += st.st_blocks * 512
    return total


def human(n: int) -> str:
    size, unit = float(n), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"


_KEY = re.compile(r"^planeai/([A-Za-z0-9]+-\d+)")


def plan(manager: "SessionManager") -> list[Item]:
    """Everything gc would remove (``keep`` unset) or keeps on purpose (``keep`` set)."""
    from planeai.git import worktrees as wt
    from planeai.git.safe_git import default_branch, git

    store = manager.store
    root = Path(manager.config.worktrees.root).expanduser() if manager.config.worktrees.root \
        else manager.locs.worktrees_dir
    root = Path(os.path.realpath(root))
    sessions = store.list_sessions()
    by_path: dict[str, list] = {}
    for s in sessions:
        if s.worktree:
            by_path.setdefault(os.path.realpath(s.worktree), []).append(s)
    newest: dict[str, str] = {}
    for s in sessions:  # oldest first: the last one seen is the newest
        if s.task_key:
            newest[s.task_key] = s.id
    items: list[Item] = []
    for project in store.list_projects():
        repo = Path(project.path)
        if not repo.is_dir():
            continue
        try:
            wts = wt.list_worktrees(repo)
        except PlaneaiError:
            continue
        checked_out = {w.branch for w in wts if w.branch}
        for w in wts[1:]:
            real = Path(os.path.realpath(w.path))
            if root not in real.parents or w.prunable or not real.is_dir():
                continue
            owners = by_path.get(str(real), [])
            reason = None
            if not owners:
                reason = "stale: no session"
            elif all(s.state is SessionState.ARCHIVED for s in owners):
                reason = "stale: session archived"
            elif all(s.state not in LIVE_STATES and s.task_key and newest.get(s.task_key) != s.id
                     for s in owners):
                reason = "retry leftover: the task has a newer session"
            if reason is None:
                continue
            item = Item("worktree", str(w.path), str(repo), reason, disk_usage(real))
            losses = wt.removal_losses(real)
            if losses:
                item.keep = "unsaved work: " + ", ".join(losses)
            items.append(item)
        # branches of delivered or deleted tasks, nobody's checkout
        try:
            base = project.default_branch or default_branch(repo)
        except PlaneaiError:
            continue
        refs = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/planeai/"
                   ).stdout.split()
        going = {Path(i.what).name for i in items if i.kind == "worktree" and not i.keep}
        for branch in refs:
            holder = next((w for w in wts if w.branch == branch), None)
            if branch in checked_out and not (holder and holder.path.name in going):
                continue
            m = _KEY.match(branch)
            if not m:
                continue
            try:
                task = store.get_task(m.group(1))
                if task.status is not Status.DONE:
                    continue
                why = "delivered: task done"
            except NotFoundError:
                why = "task deleted"
            item = Item("branch", branch, str(repo), why, base=base)
            if git(repo, "merge-base", "--is-ancestor", f"refs/heads/{branch}",
                   f"refs/heads/{base}", check=False).returncode != 0:
                item.keep = f"has commits not in {base}"
            items.append(item)
    return items


def apply(manager: "SessionManager", items: list[Item]) -> list[Item]:
    """Remove the items that are not kept (worktrees before branches); what went."""
    from planeai.git import worktrees as wt
    from planeai.git.safe_git import git

    gone: list[Item] = []
    for item in sorted((i for i in items if not i.keep), key=lambda i: i.kind != "worktree"):
        if item.kind == "worktree":
            wt.remove_worktree(item.repo, item.what)  # refuses if work appeared meanwhile
        else:
            # only while every commit of it is still in the base
            if git(item.repo, "merge-base", "--is-ancestor", f"refs/heads/{item.what}",
                   f"refs/heads/{item.base}", check=False).returncode != 0:
                continue
            git(item.repo, "branch", "-D", item.what)
        manager.store.append_event(ev.GC_REMOVED, data=item.as_dict())
        gone.append(item)
    return gone
