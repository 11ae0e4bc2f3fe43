"""Delivering a task's work: commit it, merge its branch into the base locally, or push it
and open a pull request; then clean up under the never-lose-work rules of ``session delete``.

A merge refuses uncommitted work in the task's worktree unless asked to commit it first. A
merged task moves to done, its session is archived, its worktree removed (and its branch, by
``[review] delete_branch``) unless the worktree holds work the merge did not carry (then it
stays, and the result says why). After a squash the branch's own commits are not in the base
(their content is): the removal is forced only for that, so a recovery ref keeps them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from planeai.core import events as ev
from planeai.core.models import SessionState, Status
from planeai.errors import ConflictError, PlaneaiError
from planeai.services import review
from planeai.services import tasks as task_svc

if TYPE_CHECKING:
    from planeai.git.review.merge import MergeResult
    from planeai.services.sessions import SessionManager
    from planeai.store.repository import Store


def task_message(store: "Store", key: str) -> str:
    """``PLA-1: title`` and the description as the body."""
    t = store.get_task(key)
    body = t.description.strip()
    return f"{t.key}: {t.title}\n" + (f"\n{body}\n" if body else "")


def commit(store: "Store", key: str, message: str | None = None,
           session: str | None = None) -> str:
    """Commit every change of the task's worktree (untracked included); the commit id.
    ConflictError when there is nothing to commit."""
    from planeai.git.review.commit import commit_all

    t = review.target(store, key, session)
    msg = message if message and message.strip() else task_message(store, t.task.key)
    sha = commit_all(t.worktree, msg)
    if sha is None:
        raise ConflictError(f"nothing to commit in {t.worktree} ({t.session.name})")
    store.append_event(ev.REVIEW_COMMITTED, project_id=t.task.project_id, task_key=t.task.key,
                       session_id=t.session.id, data={"commit": sha, "branch": t.branch})
    return sha


def _refuse_uncommitted(t: review.Target, commit_first: bool, store: "Store") -> str | None:
    from planeai.git.review.commit import has_changes

    if not has_changes(t.worktree):
        return None
    if not commit_first:
        raise ConflictError(f"{t.session.name}'s worktree {t.worktree} has uncommitted changes; "
                            f"commit them first (`planeai commit {t.task.key}`) or pass --commit")
    return commit(store, t.task.key, session=t.session.name)


@dataclass
class Cleanup:
    removed: bool = False
    branch_deleted: bool = False
    recovery: str | None = None
    kept: str | None = None       # why the worktree stayed

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class MergeOutcome:
    result: "MergeResult"
    committed: str | None = None
    cleanup: Cleanup = field(default_factory=Cleanup)

    def as_dict(self) -> dict:
        return {**self.result.as_dict(), "committed": self.committed,
                "cleanup": self.cleanup.as_dict()}


def _uncommit(worktree: Path, commit: str) -> None:
    """Undo the commit ``merge --commit`` made (still the branch's HEAD): its changes are
    back in the worktree, uncommitted, as they were."""
    from planeai.git.safe_git import git

    if git(worktree, "rev-parse", "HEAD").stdout.strip() == commit:
        git(worktree, "reset", "-q", "--mixed", f"{commit}~1")


def _is_ancestor(repo: Path, a: str, b: str) -> bool:
    from planeai.git.safe_git import git

    return git(repo, "merge-base", "--is-ancestor", a, b, check=False).returncode == 0


def cleanup(manager: "SessionManager", t: review.Target, *, delete_branch: bool) -> Cleanup:
    """Remove a delivered task's worktree (and branch): nothing with unsaved work goes; the
    only thing forced is commits whose content the base holds (a squash), kept in a
    recovery ref."""
    from planeai.git import worktrees as wt
    from planeai.git.safe_git import git

    out = Cleanup()
    losses = wt.removal_losses(t.worktree)
    other = [x for x in losses if not x.endswith(" unpushed")]
    if other:
        out.kept = f"{t.worktree} holds work the merge did not carry: {', '.join(other)}"
        return out
    if manager.store.get_session(t.session.id).state is not SessionState.ARCHIVED:
        manager.archive(t.session.id)  # stops its agent first: nothing writes while it goes
    recovery = wt.remove_worktree(t.repo, t.worktree, force=bool(losses),
                                  recovery_dir=manager.locs.state_dir / "recovery")
    out.removed, out.recovery = True, (str(recovery) if recovery else None)
    if delete_branch and git(t.repo, "rev-parse", "-q", "--verify", f"refs/heads/{t.branch}",
                             check=False).returncode == 0:
        if recovery or _is_ancestor(t.repo, f"refs/heads/{t.branch}", f"refs/heads/{t.base}"):
            git(t.repo, "branch", "-D", t.branch)
            out.branch_deleted = True
    return out


def stacked_under(manager: "SessionManager", t: review.Target) -> list[str]:
    """The tasks whose work this task's branch was started from (planeai.git.worktrees.stack:
    its done blockers) and that its base does not hold yet: what must land first."""
    store = manager.store
    under = []
    for key in t.task.blocked_by:
        for s in reversed(store.sessions_for_task(key)):
            if not s.branch:
                continue
            ref = f"refs/heads/{s.branch}"
            from planeai.git.safe_git import git

            if git(t.repo, "rev-parse", "-q", "--verify", ref, check=False).returncode != 0:
                continue
            if (_is_ancestor(t.repo, ref, f"refs/heads/{t.branch}")
                    and not _is_ancestor(t.repo, ref, f"refs/heads/{t.base}")):
                under.append(key)
            break
    return under


def merge(manager: "SessionManager", key: str, how: str | None = None, *,
          commit_first: bool = False, session: str | None = None,
          stack: bool = False) -> MergeOutcome:
    """Merge the task's branch into its base (``how`` or ``[review] merge``). On success the
    task is done and its worktree cleaned up; on a conflict nothing changed. A task started
    from other tasks' unmerged work needs them delivered first: with ``stack`` they are (in
    order, each as its own merge), else ConflictError names them."""
    from planeai.git.review.merge import land
    from planeai.services import delivery_remote

    store = manager.store
    ran_on_host = delivery_remote.remote_session(manager, key, session)
    if ran_on_host is not None:  # its branch is in the host's clone: fetched back first
        return delivery_remote.merge(manager, ran_on_host, how or manager.config.review.merge,
                                     commit_first=commit_first)
    under = stacked_under(manager, review.target(store, key, session))
    if under and not stack:
        raise ConflictError(
            f"{key} stands on the work of {', '.join(under)}, which its base does not hold "
            f"yet: merge {' then '.join(under)} first, or pass --stack to deliver them with it")
    for below in under:
        done = merge(manager, below, how, commit_first=commit_first, stack=True)
        if not done.result.ok:
            return done  # the conflict names its files; nothing of this task changed
    store = manager.store
    review_cfg = manager.config.review
    how = how or review_cfg.merge
    t = review.target(store, key, session)
    from planeai.git.review.merge import check_base_checkout

    check_base_checkout(t.repo, t.base)  # before committing anything
    committed = _refuse_uncommitted(t, commit_first, store)
    message = task_message(store, t.task.key)
    if how == "merge":
        message = f"Merge {t.branch} ({message.splitlines()[0]})\n" + message.partition("\n")[2]
    res = land(t.repo, t.branch, t.base, how, message)
    outcome = MergeOutcome(res, committed)
    if not res.ok:
        if committed:
            _uncommit(t.worktree, committed)  # a conflict leaves the branch as it was
            outcome.committed = None
        return outcome
    store.append_event(ev.TASK_MERGED, project_id=t.task.project_id, task_key=t.task.key,
                       session_id=t.session.id, data={
                           "how": how, "base": t.base, "branch": t.branch,
                           "commit": res.commit, "base_before": res.base_before})
    task_svc.move(store, t.task.key, Status.DONE, reason=f"merged into {t.base}")
    try:
        outcome.cleanup = cleanup(manager, t, delete_branch=review_cfg.delete_branch)
    except PlaneaiError as e:
        outcome.cleanup = Cleanup(kept=str(e))
    return outcome


@dataclass
class PrOutcome:
    remote: str
    branch: str
    url: str | None = None
    note: str | None = None           # e.g. gh is missing
    compare_url: str | None = None
    committed: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def pull_request(manager: "SessionManager", key: str, *, remote: str | None = None,
                 commit_first: bool = False, session: str | None = None) -> PrOutcome:
    """Push the branch and open a pull request with gh (title and body from the task); the
    URL is recorded on the task, which moves to review. Without gh: pushed, and a note."""
    from planeai.git.review import push

    from planeai.services import delivery_remote

    store = manager.store
    remote = remote or manager.config.review.remote
    ran_on_host = delivery_remote.remote_session(manager, key, session)
    if ran_on_host is not None:  # pushed from here, once its branch is fetched back
        committed = delivery_remote.bring_back(manager, ran_on_host, commit_first=commit_first)
        t = delivery_remote.target(manager, ran_on_host)
    else:
        t = review.target(store, key, session)
        committed = _refuse_uncommitted(t, commit_first, store)
    push.push_branch(t.repo, remote, t.branch)
    store.append_event(ev.TASK_PUSHED, project_id=t.task.project_id, task_key=t.task.key,
                       session_id=t.session.id, data={"remote": remote, "branch": t.branch})
    out = PrOutcome(remote, t.branch, committed=committed)
    out.compare_url = push.compare_url(push.remote_url(t.repo, remote), t.base, t.branch)
    if push.gh_path() is None:
        out.note = ("gh (the GitHub CLI) is not installed, so no pull request was opened; "
                    "install it from https://cli.github.com or open one yourself"
                    + (f": {out.compare_url}" if out.compare_url else ""))
        return out
    task = t.task
    body = (task.description.strip() + "\n\n" if task.description.strip() else "") + \
        f"planeai task {task.key}"
    try:
        out.url = push.open_pr(t.repo, base=t.base, branch=t.branch,
                               title=f"{task.key}: {task.title}", body=body)
    except PlaneaiError as e:
        raise ConflictError(f"pushed {t.branch} to {remote}, but no pull request was opened: "
                            f"{e}") from None
    store.set_pr_url(task.key, out.url, data={"remote": remote, "branch": t.branch})
    if store.get_task(task.key).status is not Status.DONE:
        task_svc.move(store, task.key, Status.IN_REVIEW, reason="pull request opened")
    return out


@dataclass
class KeepOutcome:
    """`planeai keep`: the kept session's delivery and what became of the others."""
    merged: MergeOutcome
    discarded: dict[str, str | None] = field(default_factory=dict)  # name -> recovery ref

    def as_dict(self) -> dict:
        return {**self.merged.as_dict(), "discarded": dict(self.discarded)}


def keep(manager: "SessionManager", session: str, how: str | None = None, *,
         commit_first: bool = False) -> KeepOutcome:
    """Of a task run by several agents, keep one: merge that session's branch (as ``merge``
    does) and discard the task's other sessions: stopped, archived, their worktrees removed
    with everything in them kept in a recovery ref (never lost; the refs are returned). On a
    conflict nothing is discarded."""
    from planeai.git import worktrees as wt

    s = manager.get(session)
    if not s.task_key:
        raise ConflictError(f"{s.name} has no task: nothing to deliver")
    outcome = KeepOutcome(merge(manager, s.task_key, how, commit_first=commit_first,
                                session=s.id))
    if not outcome.merged.result.ok:
        return outcome
    project = manager.store.get_project_by_id(s.project_id)
    for other in manager.store.sessions_for_task(s.task_key):
        if other.id == s.id:
            continue
        if other.state is not SessionState.ARCHIVED:
            manager.archive(other.id)
        ref = None
        if other.worktree and Path(other.worktree).is_dir():
            ref = wt.remove_worktree(project.path, other.worktree, force=True,
                                     recovery_dir=manager.locs.state_dir / "recovery")
        outcome.discarded[other.name] = str(ref) if ref else None
        manager.store.append_event(ev.SESSION_DISCARDED, project_id=other.project_id,
                                   task_key=other.task_key, session_id=other.id,
                                   data={"discarded_for": s.name,
                                         "recovery": str(ref) if ref else None})
    return outcome
