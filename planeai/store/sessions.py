"""Sessions: the row of each agent run (its names unique, made ``name-2``, ``name-3`` ...
when taken), the rule that a task has at most one live session (checked and written in one
transaction so concurrent starts cannot both win), state and agent-status changes recorded
once, and the ``done_requested`` flag an agent sets by reporting its task done while
subtasks are open. Built on the task table because a session points at a task.
"""

from __future__ import annotations

import json
from typing import Sequence

from planeai.core import events as ev
from planeai.core.models import Project, Session, SessionState
from planeai.errors import ConflictError, NotFoundError
from planeai.store.db import now
from planeai.store.tasks import TaskTable


class LiveSessionExists(ConflictError):
    """A task that already has a live session was asked for another one."""


_SESSION_SELECT = """
    SELECT s.id, s.name, s.project_id, p.name, t.key, s.provider, s.variant, s.backend,
           s.worktree, s.branch, s.state, s.agent_status, s.exit_code, s.pid, s.autonomous,
           s.argv, s.created_at, s.updated_at, s.exited_at, s.outcome, s.skill,
           s.done_requested, s.owner
    FROM sessions s JOIN projects p ON p.id = s.project_id
    LEFT JOIN tasks t ON t.id = s.task_id
"""


def _session(r) -> Session:
    return Session(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                   SessionState(r[10]), r[11], r[12], r[13], bool(r[14]), json.loads(r[15]),
                   r[16], r[17], r[18], r[19], r[20], bool(r[21]), r[22])


class SessionTable(TaskTable):
    def add_session(self, *, id: str, name: str, project: Project, task_key: str | None,
                    provider: str, variant: str | None, backend: str, worktree: str | None,
                    branch: str | None, autonomous: bool, argv: list[str],
                    skill: str | None = None, allow_more: bool = False) -> Session:
        """Write a new session named ``name``, or ``name-2``, ``name-3`` ... when taken;
        returns it. Raises NotFoundError for an unknown task.

        The name and the check that the task has no live session happen in one
        ``BEGIN IMMEDIATE`` transaction, so of several concurrent starts of one task exactly
        one wins; the others get :class:`LiveSessionExists`. ``allow_more`` is for
        intentional parallel sessions of one task (``planeai run @a @b``)."""
        with self.write() as c:
            task_id = self._task_id(task_key) if task_key else None
            if task_id is not None and not allow_more:
                live = self._one("SELECT name, state FROM sessions WHERE task_id = ? AND state"
                                 " IN ('created', 'running') ORDER BY created_at", (task_id,))
                if live:
                    raise LiveSessionExists(
                        f"{task_key} already has a live session {live[0]} ({live[1]}); attach "
                        f"with `planeai attach {live[0]}` or stop it first")
            name = self._free_name(name)
            ts = now()
            c.execute(
                "INSERT INTO sessions (id, name, project_id, task_id, provider, variant, backend,"
                " worktree, branch, autonomous, argv, skill, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (id, name, project.id, task_id, provider, variant, backend, worktree, branch,
                 int(autonomous), json.dumps(argv), skill, ts, ts))
            self.append_event(ev.SESSION_CREATED, project_id=project.id, task_key=task_key,
                              session_id=id, data={"name": name, "provider": provider,
                                                   "variant": variant, "backend": backend,
                                                   "worktree": worktree, "branch": branch,
                                                   "skill": skill})
            return self.get_session(id)

    def _free_name(self, base: str) -> str:
        """base, then base-2, base-3 ...: the first name no session has (call in a write)."""
        taken = {r[0] for r in self._all(
            "SELECT name FROM sessions WHERE name = ? OR name GLOB ?", (base, base + "-[0-9]*"))}
        name, n = base, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        return name

    def get_session(self, ref: str) -> Session:
        """By id or name; raises NotFoundError."""
        row = self._one(_SESSION_SELECT + " WHERE s.id = ? OR s.name = ?", (ref, ref))
        if not row:
            raise NotFoundError(f"no session {ref}")
        return _session(row)

    def sessions_for_task(self, key: str) -> list[Session]:
        """Every session of task ``key``, oldest first."""
        return [_session(r) for r in self._all(
            _SESSION_SELECT + " WHERE t.key = ? ORDER BY s.created_at", (key,))]

    def list_sessions(self, *, states: Sequence[SessionState] | None = None,
                      project_ids: Sequence[int] | None = None,
                      backend: str | None = None) -> list[Session]:
        """Sessions matching every filter given, oldest first."""
        where, args = [], []
        if states:
            where.append(f"s.state IN ({','.join('?' * len(states))})")
            args += [st.value for st in states]
        if project_ids is not None:
            where.append(f"s.project_id IN ({','.join('?' * len(project_ids)) or 'NULL'})")
            args += list(project_ids)
        if backend:
            where.append("s.backend = ?")
            args.append(backend)
        sql = _SESSION_SELECT + (" WHERE " + " AND ".join(where) if where else "")
        return [_session(r) for r in self._all(sql + " ORDER BY s.created_at", args)]

    _SESSION_FIELDS = {"state", "agent_status", "exit_code", "pid", "argv", "worktree", "branch",
                       "exited_at", "outcome", "owner"}

    def update_session(self, id: str, *, event: str | None = None,
                       event_data: dict | None = None, **fields) -> Session:
        """Set ``fields`` and append ``event`` (if given) in one transaction; returns the
        session. Raises NotFoundError, or ValueError for a field that cannot be set."""
        with self.write() as c:
            before = self.get_session(id)
            sets, args = [], []
            for k, v in fields.items():
                if k not in self._SESSION_FIELDS:
                    raise ValueError(f"not a session field: {k}")
                if k == "state":
                    v = SessionState(v).value
                if k == "argv":
                    v = json.dumps(v)
                sets.append(f"{k} = ?")
                args.append(v)
            if sets:
                sets.append("updated_at = ?")
                args += [now(), id]
                c.execute(f"UPDATE sessions SET {', '.join(sets)} WHERE id = ?", args)
            if event:
                self.append_event(event, project_id=before.project_id, task_key=before.task_key,
                                  session_id=id, data=event_data or {})
            return self.get_session(id)

    def delete_session(self, id: str) -> None:
        """Delete the session's row; raises NotFoundError."""
        with self.write() as c:
            s = self.get_session(id)
            c.execute("DELETE FROM sessions WHERE id = ?", (id,))
            self.append_event(ev.SESSION_DELETED, project_id=s.project_id, task_key=s.task_key,
                              session_id=id, data={"name": s.name})

    def set_agent_status(self, id: str, status: str) -> Session | None:
        """Record a new agent status once: concurrent observers produce one event, not two.
        Returns the session, or None when it had that status already."""
        with self.write():
            cur = self.get_session(id)
            if cur.agent_status == status:
                return None
            return self.update_session(id, agent_status=status, event=ev.SESSION_STATUS,
                                       event_data={"from": cur.agent_status, "to": status})

    def request_done(self, key: str, *, session_id: str | None,
                     open_subtasks: Sequence[str]) -> None:
        """Record that the agent of ``session_id`` said ``key`` is done while subtasks were
        open: the session's ``done_requested`` and the event in one transaction. Raises
        NotFoundError for an unknown task."""
        with self.write() as c:
            task = self.get_task(key)
            if session_id:
                c.execute("UPDATE sessions SET done_requested = 1, updated_at = ? WHERE id = ?",
                          (now(), session_id))
            self.append_event(ev.TASK_DONE_REQUESTED, project_id=task.project_id, task_key=key,
                              session_id=session_id, data={"open_subtasks": list(open_subtasks)})
