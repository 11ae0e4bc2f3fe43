"""Tasks: numbering (one counter per key prefix), the task row and its editable fields,
status moves, the parent link and blockers (their graph rules are
:mod:`planeai.core.graph`'s; this module only supplies the lookups), deletion with subtasks,
and the failure count and hold the dispatcher records. Tasks are read with their blockers
filled in.
"""

from __future__ import annotations

from typing import Sequence

from planeai.core import events as ev
from planeai.core.graph import check_blocker, check_parent
from planeai.core.models import Project, Status, Task
from planeai.errors import ConflictError, NotFoundError, ValidationError
from planeai.store.db import now
from planeai.store.events import EventLog

_TASK_SELECT = """
    SELECT t.id, t.project_id, p.name, t.key, t.title, t.description, t.status, t.priority,
           par.key, t.base_branch, t.provider, t.created_at, t.updated_at, t.failures,
           t.last_failure, t.held, t.pr_url, t.sandbox, t.host
    FROM tasks t
    JOIN projects p ON p.id = t.project_id
    LEFT JOIN tasks par ON par.id = t.parent_id
"""


class TaskTable(EventLog):
    def _task_id(self, key: str) -> int:
        row = self._one("SELECT id FROM tasks WHERE key = ?", (key,))
        if not row:
            raise NotFoundError(f"no task {key}")
        return row[0]

    def _rows_to_tasks(self, rows) -> list[Task]:
        tasks = [
            Task(r[0], r[1], r[2], r[3], r[4], r[5], Status(r[6]), r[7], r[8], r[9], r[10],
                 r[11], r[12], failures=r[13], last_failure=r[14], held=bool(r[15]),
                 pr_url=r[16], sandbox=None if r[17] is None else bool(r[17]),
                 host=r[18])
            for r in rows
        ]
        if not tasks:
            return tasks
        by_id = {t.id: t for t in tasks}
        # Blockers for just these tasks; a temp table would be faster for huge sets, but IN (...)
        # with chunking is simple and fine up to tens of thousands.
        ids = list(by_id)
        for i in range(0, len(ids), 900):
            chunk = ids[i:i + 900]
            marks = ",".join("?" * len(chunk))
            for task_id, bkey, bstatus in self._all(
                f"SELECT b.task_id, t.key, t.status FROM task_blockers b"
                f" JOIN tasks t ON t.id = b.blocker_id WHERE b.task_id IN ({marks})"
                f" ORDER BY t.project_id, t.number", chunk):
                task = by_id[task_id]
                task.blocked_by.append(bkey)
                if bstatus != Status.DONE.value:
                    task.open_blockers.append(bkey)
        return tasks

    def get_task(self, key: str) -> Task:
        """The task ``key`` with its blockers; raises NotFoundError."""
        rows = self._all(_TASK_SELECT + " WHERE t.key = ?", (key,))
        if not rows:
            raise NotFoundError(f"no task {key}")
        return self._rows_to_tasks(rows)[0]

    def list_tasks(
        self,
        *,
        project_ids: Sequence[int] | None = None,
        statuses: Sequence[Status] | None = None,
        parent_key: str | None = None,
        include_archived_projects: bool = False,
    ) -> list[Task]:
        """Tasks matching every filter given, by project name then number."""
        where, args = [], []
        if project_ids is not None:
            where.append(f"t.project_id IN ({','.join('?' * len(project_ids)) or 'NULL'})")
            args += list(project_ids)
        if statuses:
            where.append(f"t.status IN ({','.join('?' * len(statuses))})")
            args += [s.value for s in statuses]
        if parent_key is not None:
            where.append("par.key = ?")
            args.append(parent_key)
        if not include_archived_projects:
            where.append("p.archived = 0")
        sql = _TASK_SELECT + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY p.name, t.number"
        return self._rows_to_tasks(self._all(sql, args))

    def add_task(
        self,
        project: Project,
        *,
        title: str,
        description: str = "",
        priority: int = 0,
        blocked_by: Sequence[str] = (),
        parent_key: str | None = None,
        base_branch: str | None = None,
        provider: str | None = None,
        sandbox: bool | None = None,
        host: str | None = None,
    ) -> Task:
        """Create the project's next-numbered task; returns it. Raises NotFoundError when the
        parent or a blocker does not exist."""
        with self.write() as c:
            parent_id = self._task_id(parent_key) if parent_key else None
            blocker_ids = [self._task_id(k) for k in blocked_by]
            row = c.execute(
                "UPDATE key_counters SET last_number = last_number + 1 WHERE prefix = ?"
                " RETURNING last_number", (project.key_prefix,)).fetchone()
            if row is None:  # counter row lost (e.g. hand-edited db): recreate past the max
                top = c.execute("SELECT COALESCE(MAX(number), 0) FROM tasks WHERE key LIKE ?",
                                (project.key_prefix + "-%",)).fetchone()[0]
                c.execute("INSERT INTO key_counters (prefix, last_number) VALUES (?, ?)",
                          (project.key_prefix, top + 1))
                number = top + 1
            else:
                number = row[0]
            key = f"{project.key_prefix}-{number}"
            ts = now()
            cur = c.execute(
                "INSERT INTO tasks (project_id, key, number, title, description, priority,"
                " parent_id, base_branch, provider, created_at, updated_at, sandbox,"
                " host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (project.id, key, number, title, description, priority, parent_id,
                 base_branch, provider, ts, ts, None if sandbox is None else int(sandbox), host),
            )
            task_id = cur.lastrowid
            c.executemany("INSERT OR IGNORE INTO task_blockers (task_id, blocker_id) VALUES (?, ?)",
                          [(task_id, b) for b in blocker_ids])
            self.append_event(ev.TASK_CREATED, project_id=project.id, task_key=key, data={
                "title": title, "priority": priority, "parent": parent_key,
                "blocked_by": list(blocked_by)})
            return self.get_task(key)

    _EDITABLE = {"title", "description", "priority", "base_branch", "provider", "sandbox", "host"}

    def update_task(self, key: str, **fields) -> Task:
        """Edit plain fields; ``parent_key`` (None clears) is handled here too. Returns the
        task; raises NotFoundError, ValidationError (the parent would make a loop) or
        ValueError for a field that cannot be edited."""
        with self.write() as c:
            before = self.get_task(key)
            sets, args, changed = [], [], {}
            for name, value in fields.items():
                if name == "parent_key":
                    pid = None if value is None else self._task_id(value)
                    if value is not None:
                        check_parent(before.key, value, self._parent_of)
                    sets.append("parent_id = ?")
                    args.append(pid)
                    changed["parent"] = value
                elif name in self._EDITABLE:
                    sets.append(f"{name} = ?")
                    args.append(value)
                    changed[name] = value if name != "description" else f"{len(value)} chars"
                else:
                    raise ValueError(f"not an editable field: {name}")
            if not sets:
                return before
            sets.append("updated_at = ?")
            args += [now(), before.id]
            c.execute(f"UPDATE tasks SET {', '.join(sets)} WHERE id = ?", args)
            self.append_event(ev.TASK_EDITED, project_id=before.project_id, task_key=key,
                              data=changed)
            return self.get_task(key)

    def set_pr_url(self, key: str, url: str, *, data: dict | None = None) -> Task:
        """Record the pull request opened for the task's branch (event ``task.pr_opened``)."""
        with self.write() as c:
            before = self.get_task(key)
            c.execute("UPDATE tasks SET pr_url = ?, updated_at = ? WHERE id = ?",
                      (url, now(), before.id))
            self.append_event(ev.TASK_PR_OPENED, project_id=before.project_id, task_key=key,
                              data={"url": url, **(data or {})})
            return self.get_task(key)

    def _parent_of(self, key: str) -> str | None:
        row = self._one(
            "SELECT par.key FROM tasks t LEFT JOIN tasks par ON par.id = t.parent_id"
            " WHERE t.key = ?", (key,))
        return row[0] if row else None

    def set_status(self, key: str, status: Status, *, reason: str | None = None) -> Task:
        """Move the task to ``status`` (no event when it is there already); returns it.
        Raises NotFoundError."""
        with self.write() as c:
            before = self.get_task(key)
            if before.status is status:
                return before
            # a person moving a task back to todo releases a failure hold
            held_sql = ", held = 0" if status is Status.TODO else ""
            c.execute(f"UPDATE tasks SET status = ?, updated_at = ?{held_sql} WHERE id = ?",
                      (status.value, now(), before.id))
            data = {"from": before.status.value, "to": status.value}
            if reason:
                data["reason"] = reason
            self.append_event(ev.TASK_MOVED, project_id=before.project_id, task_key=key, data=data)
            return self.get_task(key)

    def add_blockers(self, key: str, blocker_keys: Sequence[str]) -> Task:
        """Block ``key`` by each of ``blocker_keys``; returns the task. Raises NotFoundError,
        or ValidationError when a link would block a task by itself or close a cycle."""
        with self.write() as c:
            task = self.get_task(key)
            for bkey in blocker_keys:
                check_blocker(key, bkey, self._blockers_of)
                bid = self._task_id(bkey)
                c.execute("INSERT OR IGNORE INTO task_blockers (task_id, blocker_id) VALUES (?, ?)",
                          (task.id, bid))
            self.append_event(ev.TASK_BLOCKED, project_id=task.project_id, task_key=key,
                              data={"by": list(blocker_keys)})
            return self.get_task(key)

    def _blockers_of(self, key: str) -> list[str]:
        return [r[0] for r in self._all(
            "SELECT bt.key FROM task_blockers b JOIN tasks t ON t.id = b.task_id"
            " JOIN tasks bt ON bt.id = b.blocker_id WHERE t.key = ?", (key,))]

    def remove_blockers(self, key: str, blocker_keys: Sequence[str] | None) -> Task:
        """Remove the named blockers, or all when None; returns the task. Raises
        NotFoundError, or ValidationError for a key that does not block it."""
        with self.write() as c:
            task = self.get_task(key)
            if blocker_keys is None:
                removed = list(task.blocked_by)
                c.execute("DELETE FROM task_blockers WHERE task_id = ?", (task.id,))
            else:
                removed = []
                for bkey in blocker_keys:
                    if bkey not in task.blocked_by:
                        raise ValidationError(f"{key} is not blocked by {bkey}")
                    c.execute("DELETE FROM task_blockers WHERE task_id = ? AND blocker_id = ?",
                              (task.id, self._task_id(bkey)))
                    removed.append(bkey)
            self.append_event(ev.TASK_UNBLOCKED, project_id=task.project_id, task_key=key,
                              data={"removed": removed})
            return self.get_task(key)

    def children(self, key: str) -> list[str]:
        """The keys of the direct subtasks of ``key``, by number."""
        return [r[0] for r in self._all(
            "SELECT t.key FROM tasks t JOIN tasks p ON p.id = t.parent_id WHERE p.key = ?"
            " ORDER BY t.number", (key,))]

    def delete_task(self, key: str, *, recursive: bool = False) -> list[str]:
        """Delete the task (and its subtasks, deepest first, when ``recursive``); returns the
        deleted keys. Raises NotFoundError, or ConflictError when it has subtasks and
        ``recursive`` is not set."""
        with self.write() as c:
            task = self.get_task(key)
            kids = self.children(key)
            if kids and not recursive:
                raise ConflictError(
                    f"{key} has subtasks {', '.join(kids)}; delete them first or pass --recursive")
            deleted = []
            for kid in kids:
                deleted += self.delete_task(kid, recursive=True)
            c.execute("DELETE FROM tasks WHERE id = ?", (task.id,))
            self.append_event(ev.TASK_DELETED, project_id=task.project_id, task_key=key,
                              data={"title": task.title})
            return deleted + [key]

    def record_failure(self, key: str, reason: str, *, hold: bool) -> Task:
        """Count a failed dispatched run: the task goes back to todo, held for a person when
        ``hold``; returns it. Raises NotFoundError."""
        with self.write() as c:
            t = self.get_task(key)
            c.execute("UPDATE tasks SET failures = failures + 1, last_failure = ?, held = ?,"
                      " status = 'todo', updated_at = ? WHERE id = ?",
                      (reason, int(hold), now(), t.id))
            data = {"reason": reason, "failures": t.failures + 1, "held": hold}
            self.append_event(ev.TASK_FAILED, project_id=t.project_id, task_key=key, data=data)
            if t.status is not Status.TODO:
                self.append_event(ev.TASK_MOVED, project_id=t.project_id, task_key=key,
                                  data={"from": t.status.value, "to": "todo", "reason": reason})
            return self.get_task(key)
