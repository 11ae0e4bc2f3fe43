"""Plain data: projects, tasks, sessions, events. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Status(str, Enum):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    IN_REVIEW = "in_review"
    DONE = "done"

    @classmethod
    def parse(cls, text: str) -> "Status":
        from planeai.core.errors import ValidationError

        norm = text.strip().lower().replace("-", "_").replace(" ", "_")
        aliases = {"inprogress": "in_progress", "review": "in_review", "doing": "in_progress"}
        norm = aliases.get(norm, norm)
        try:
            return cls(norm)
        except ValueError:
            accepted = ", ".join(s.value for s in cls)
            raise ValidationError(f"unknown status {text!r}; accepted: {accepted}") from None


STATUS_ORDER = [Status.TODO, Status.IN_PROGRESS, Status.IN_REVIEW, Status.DONE]


@dataclass
class Project:
    id: int
    name: str
    key_prefix: str
    path: str
    default_branch: str | None
    archived: bool
    created_at: str

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "key": self.key_prefix,
            "path": self.path,
            "default_branch": self.default_branch,
            "archived": self.archived,
            "created_at": self.created_at,
        }


@dataclass
class Task:
    id: int
    project_id: int
    project_name: str
    key: str
    title: str
    description: str
    status: Status
    priority: int
    parent_key: str | None
    base_branch: str | None
    provider: str | None
    created_at: str
    updated_at: str
    blocked_by: list[str] = field(default_factory=list)
    # keys of blockers that are not done yet; empty means not blocked
    open_blockers: list[str] = field(default_factory=list)
    failures: int = 0
    last_failure: str | None = None
    held: bool = False  # failed too often: waits for a person
    pr_url: str | None = None  # the pull request `planeai pr` opened for its branch
    sandbox: bool | None = None  # run its agents in Docker: None = as configured
    host: str | None = None      # where its agents run: None = any free slot, "local", a host

    @property
    def ready(self) -> bool:
        return self.status is Status.TODO and not self.open_blockers and not self.held

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "project": self.project_name,
            "title": self.title,
            "description": self.description,
            "status": self.status.value,
            "priority": self.priority,
            "blocked_by": list(self.blocked_by),
            "open_blockers": list(self.open_blockers),
            "ready": self.ready,
            "failures": self.failures,
            "last_failure": self.last_failure,
            "held": self.held,
            "pr_url": self.pr_url,
            "sandbox": self.sandbox,
            "host": self.host,
            "parent": self.parent_key,
            "base_branch": self.base_branch,
            "provider": self.provider,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class Event:
    id: int
    ts: str
    kind: str
    project_id: int | None
    task_key: str | None
    session_id: str | None
    data: dict

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "ts": self.ts,
            "kind": self.kind,
            "task": self.task_key,
            "session": self.session_id,
            "data": self.data,
        }


class SessionState(str, Enum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    ARCHIVED = "archived"


# A live session may still run its agent: at most one per task (the store enforces it).
LIVE_STATES = (SessionState.CREATED, SessionState.RUNNING)


@dataclass
class Session:
    id: str
    name: str
    project_id: int
    project_name: str
    task_key: str | None
    provider: str
    variant: str | None
    backend: str
    worktree: str | None
    branch: str | None
    state: SessionState
    agent_status: str | None
    exit_code: int | None
    pid: int | None
    autonomous: bool
    argv: list[str]
    created_at: str
    updated_at: str
    exited_at: str | None
    outcome: str | None = None   # success / failure, set when a dispatched run completes
    skill: str | None = None
    # its agent ran `planeai task done` while subtasks were open: finished once they are
    done_requested: bool = False
    # in-process (local) sessions: the process running it (pid:starttime); only it judges
    owner: str | None = None

    @property
    def agent(self) -> str:
        """What users type: claude-opus."""
        from planeai.core.agents import agent_name

        return agent_name(self.provider, self.variant)

    def as_dict(self) -> dict:
        return {
            "id": self.id, "name": self.name, "project": self.project_name,
            "task": self.task_key, "provider": self.provider, "variant": self.variant,
            "agent": self.agent, "backend": self.backend, "worktree": self.worktree,
            "branch": self.branch, "state": self.state.value,
            "agent_status": self.agent_status, "exit_code": self.exit_code, "pid": self.pid,
            "autonomous": self.autonomous, "argv": self.argv, "created_at": self.created_at,
            "updated_at": self.updated_at, "exited_at": self.exited_at,
            "outcome": self.outcome, "skill": self.skill,
            "done_requested": self.done_requested,
        }
