"""Reviewing a task's work: its worktree's diff against the base, and the project's checks.

Which worktree: the task's newest session that has one (or a session named by the caller).
Which base: the merge-base of that worktree's HEAD with the task's base branch (else the
project's default branch, else the repo's). The checks are the user's own ``[review] checks``
(a repo's ``.planeai/config.toml`` sets them only once trusted, like hooks): each one is split
with shlex and run as an argv in the worktree, never through a shell and never with task text
in it; the result is an event (``review.checked``) that the task and session can read back.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from planeai.core import events as ev
from planeai.core import validate
from planeai.core.models import Session, Task
from planeai.errors import ConflictError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from planeai.config import Config
    from planeai.git.review.diff import WorktreeDiff
    from planeai.store.repository import Store

OUTPUT_KEEP = 20_000  # characters of a check's output kept in its event (the tail)


@dataclass(frozen=True)
class Target:
    """A task's session worktree and what it is compared with."""

    task: Task
    session: Session
    worktree: Path
    branch: str
    base: str               # the base branch name
    repo: Path              # the project's main checkout


def _base_branch(store: "Store", task: Task) -> tuple[Path, str]:
    project = store.get_project_by_id(task.project_id)
    repo = Path(project.path)
    base = task.base_branch or project.default_branch
    if not base:
        from planeai.git.safe_git import default_branch

        base = default_branch(repo)
    return repo, base


def target(store: "Store", key: str, session: str | None = None) -> Target:
    """The worktree to review for task ``key`` (its newest session with a worktree on disk, or
    ``session``); NotFoundError / ConflictError say what is missing."""
    key = validate.normalize_key(key)
    task = store.get_task(key)
    if session:
        s = store.get_session(session)
        if s.task_key != key:
            raise ValidationError(f"session {s.name} belongs to {s.task_key or 'no task'}, "
                                  f"not {key}")
        candidates = [s]
    else:
        candidates = list(reversed(store.sessions_for_task(key)))
        if not candidates:
            raise NotFoundError(f"{key} has no session; start one with "
                                f"`planeai session start {key}`")
    for s in candidates:
        if s.worktree and s.branch and Path(s.worktree).is_dir():
            repo, base = _base_branch(store, task)
            return Target(task, s, Path(s.worktree), s.branch, base, repo)
    which = candidates[0].name if session else f"no session of {key}"
    raise ConflictError(f"{which} has no worktree on disk (it ran in the repo itself, or its "
                        "worktree was removed)")


def diff(store: "Store", key: str, session: str | None = None) -> "WorktreeDiff":
    """The task's changes against its base: committed, uncommitted and untracked."""
    from planeai.git.review.diff import worktree_diff

    t = target(store, key, session)
    return worktree_diff(t.worktree, t.base)


def session_summary(store: "Store", s: Session) -> str | None:
    """``+N -M`` for a session's worktree (the sidebar), None without a worktree."""
    from planeai.git.review.diff import worktree_diff
    from planeai.errors import GitError

    if not (s.worktree and s.task_key and Path(s.worktree).is_dir()):
        return None
    try:
        _, base = _base_branch(store, store.get_task(s.task_key))
        return worktree_diff(s.worktree, base).summary()
    except (GitError, NotFoundError):
        return None


# ------------------------------------------------------------------------------- checks

@dataclass
class CheckResult:
    command: str
    exit_code: int | None     # None: it could not start, or timed out
    output: str
    seconds: float
    timed_out: bool = False

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    def as_dict(self) -> dict:
        return {"command": self.command, "exit_code": self.exit_code, "passed": self.passed,
                "timed_out": self.timed_out, "seconds": round(self.seconds, 3),
                "output": self.output}


@dataclass
class CheckRun:
    task_key: str
    session: str
    worktree: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def as_dict(self) -> dict:
        return {"task": self.task_key, "session": self.session, "worktree": self.worktree,
                "passed": self.passed, "results": [r.as_dict() for r in self.results]}


def _tail(text: str) -> str:
    return text if len(text) <= OUTPUT_KEEP else "[...]\n" + text[-OUTPUT_KEEP:]


def run_one(command: str, cwd: Path, timeout: float) -> CheckResult:
    try:
        argv = shlex.split(command)
    except ValueError as e:
        return CheckResult(command, None, f"cannot split {command!r}: {e}", 0.0)
    if not argv:
        return CheckResult(command, None, "empty command", 0.0)
    t0 = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANEAI_")}
    try:
        proc = subprocess.run(argv, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                              start_new_session=True)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        return CheckResult(command, None, _tail(out + f"\n[timed out after {timeout:g}s]"),
                           time.monotonic() - t0, timed_out=True)
    except OSError as e:
        return CheckResult(command, None, f"cannot run {argv[0]}: {e.strerror or e}",
                           time.monotonic() - t0)
    return CheckResult(command, proc.returncode, _tail(proc.stdout.decode("utf-8", "replace")),
                       time.monotonic() - t0)


def run_checks(store: "Store", config: "Config", key: str, session: str | None = None
               ) -> CheckRun:
    """Run ``[review] checks`` in the task's worktree, record them (event ``review.checked``),
    return the results. ConflictError when no check is configured."""
    t = target(store, key, session)
    review = config.review
    if not review.checks:
        raise ConflictError("no checks configured: set [review] checks = [\"pytest -q\"] in "
                            "your config (a repo's .planeai/config.toml needs `planeai trust`)")
    run = CheckRun(t.task.key, t.session.name, str(t.worktree))
    for command in review.checks:
        run.results.append(run_one(command, t.worktree, review.check_timeout))
    store.append_event(ev.REVIEW_CHECKED, project_id=t.task.project_id, task_key=t.task.key,
                       session_id=t.session.id, data=run.as_dict())
    return run


def last_check(store: "Store", key: str, session: str | None = None) -> dict | None:
    """The newest recorded check run of a task (of one session, by name or id, if given)."""
    key = validate.normalize_key(key)
    sid = store.get_session(session).id if session else None
    for e in reversed(store.events(task_key=key, newest=True, limit=1000)):
        if e.kind == ev.REVIEW_CHECKED and (sid is None or e.session_id == sid):
            return e.data | {"at": e.ts}
    return None


def checks_on_complete(store: "Store", config: "Config", key: str,
                       session: str | None = None) -> CheckRun | None:
    """For the dispatcher, when a run completes: the checks' results when
    ``[review] check_on_complete`` is on and checks are configured, else None (nothing ran).
    A failing run is the caller's to judge (e.g. keep the task out of review/done)."""
    review = config.review
    if not (review.check_on_complete and review.checks):
        return None
    try:
        return run_checks(store, config, key, session)
    except (ConflictError, NotFoundError):
        return None
