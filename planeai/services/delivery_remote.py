"""Delivering the work of a session that ran on another machine ([hosts.NAME]).

The branch lives in the host's clone: a merge first fetches it back into the project's repo
here (planeai.remote.workspace: a git bundle over the host's SSH connection, no shared remote
needed), then lands it like any branch (planeai.git.review.merge). The worktree there is
judged by the same never-lose-work rules: uncommitted work refuses the merge unless asked to
commit it first (then committed there), and the worktree is removed only when nothing of it
would be lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from planeai.backends.registry import host_of
from planeai.core import events as ev
from planeai.core.models import Session, SessionState, Status
from planeai.errors import ConflictError, PlaneaiError
from planeai.services import tasks as task_svc

if TYPE_CHECKING:
    from planeai.services.delivery import MergeOutcome
    from planeai.services.sessions import SessionManager


def remote_session(manager: "SessionManager", key: str, session: str | None) -> Session | None:
    """The session whose work a delivery of ``key`` takes, when that one ran on a host: the
    named one, else the task's newest session with a branch. None: deliver it here."""
    from planeai.core import validate

    store = manager.store
    key = validate.normalize_key(key)
    if session:
        s = store.get_session(session)
        return s if host_of(s.backend) is not None and s.branch else None
    for s in reversed(store.sessions_for_task(key)):
        if s.worktree and s.branch:
            return s if host_of(s.backend) is not None else None
    return None


def _backend(manager: "SessionManager", s: Session):
    be = manager.remote_backend(s.backend)
    if be is None:
        raise ConflictError(f"{s.name} ran on host {host_of(s.backend)}, which is not "
                            "configured now (planeai host list)")
    return be


def bring_back(manager: "SessionManager", s: Session, *, commit_first: bool) -> str | None:
    """The session's branch, from its host into the project's repo here (uncommitted work
    there refuses, or with ``commit_first`` is committed there first: that commit's id)."""
    from planeai.services.delivery import task_message

    be = _backend(manager, s)
    committed = None
    dirty = be.run(["git", "-C", s.worktree, "status", "--porcelain"], check=True).out.strip()
    if dirty:
        if not commit_first:
            raise ConflictError(
                f"{s.name}'s worktree {s.worktree} on host {be.host.name} has uncommitted "
                "changes; commit them there, or pass --commit to commit them first")
        msg = task_message(manager.store, s.task_key)
        be.run(["git", "-C", s.worktree, "add", "-A"], check=True)
        be.run(["git", "-C", s.worktree, *_identity(manager, s), "commit", "-q",
                "--no-verify", "-m", msg], check=True)
        committed = be.run(["git", "-C", s.worktree, "rev-parse", "HEAD"],
                           check=True).out.strip()
    manager.fetch_remote_branch(s)  # the host's branch, now a branch of this repo too
    return committed


def _identity(manager: "SessionManager", s: Session) -> list[str]:
    """``-c user.name=... -c user.email=...``: the user's identity here, as its agent had
    (the host's login may have none)."""
    from planeai.services.sandbox import git_identity

    project = manager.store.get_project_by_id(s.project_id)
    env = dict(manager.env)
    ident = {**{k: v for k, v in env.items() if k.startswith("GIT_AUTHOR_")},
             **git_identity(project.path, env)}
    out = []
    if ident.get("GIT_AUTHOR_NAME"):
        out += ["-c", f"user.name={ident['GIT_AUTHOR_NAME']}"]
    if ident.get("GIT_AUTHOR_EMAIL"):
        out += ["-c", f"user.email={ident['GIT_AUTHOR_EMAIL']}"]
    return out


def target(manager: "SessionManager", s: Session):
    """review.Target of a session on a host, for what works on the repo here (push, PR):
    its worktree path is the host's."""
    from pathlib import Path

    from planeai.services import review

    task = manager.store.get_task(s.task_key)
    repo, base = review._base_branch(manager.store, task)
    return review.Target(task, s, Path(s.worktree), s.branch, base, repo)


def merge(manager: "SessionManager", s: Session, how: str, *, commit_first: bool
          ) -> "MergeOutcome":
    """delivery.merge for a session on a host (``how`` is "merge" or "squash" ...)."""
    from planeai.git.review.merge import check_base_checkout, land
    from planeai.services import review
    from planeai.services.delivery import Cleanup, MergeOutcome, task_message

    store = manager.store
    be = _backend(manager, s)
    task = store.get_task(s.task_key)
    repo, base = review._base_branch(store, task)
    check_base_checkout(repo, base)
    committed = bring_back(manager, s, commit_first=commit_first)
    message = task_message(store, task.key)
    if how == "merge":
        message = f"Merge {s.branch} ({message.splitlines()[0]})\n" + message.partition("\n")[2]
    res = land(repo, s.branch, base, how, message)
    outcome = MergeOutcome(res, committed)
    if not res.ok:
        return outcome
    store.append_event(ev.TASK_MERGED, project_id=task.project_id, task_key=task.key,
                       session_id=s.id, data={
                           "how": how, "base": base, "branch": s.branch, "commit": res.commit,
                           "base_before": res.base_before, "host": be.host.name})
    task_svc.move(store, task.key, Status.DONE, reason=f"merged into {base}")
    out = Cleanup()
    try:
        if store.get_session(s.id).state is not SessionState.ARCHIVED:
            manager.archive(s.id)
        manager._delete_remote_worktree(be, store.get_session(s.id), force=False)
        out.removed = True
    except PlaneaiError as e:
        out.kept = str(e)
    outcome.cleanup = out
    return outcome
