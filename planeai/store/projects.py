"""Projects: registering a repository (its name, key prefix and path each unique, its task
counter created with it), finding it again by any of those, archiving, restoring and purging
it. A project's key counter outlives a purge so task keys are never reused.
"""

from __future__ import annotations

from planeai.core import events as ev
from planeai.core.models import Project
from planeai.errors import ConflictError, NotFoundError
from planeai.store.db import now
from planeai.store.events import EventLog


class ProjectTable(EventLog):
    @staticmethod
    def _project(row) -> Project:
        return Project(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6])

    _PROJECT_COLS = "id, name, key_prefix, path, default_branch, archived, created_at"

    def add_project(self, name: str, key_prefix: str, path: str,
                    default_branch: str | None) -> Project:
        """Register a project; returns it. Raises ConflictError when its path, name or key
        is taken (by a removed project too: the message says how to restore that one)."""
        with self.write() as c:
            for col, value, what in (("path", path, "path"), ("name", name, "name"),
                                     ("key_prefix", key_prefix, "key")):
                row = c.execute(
                    f"SELECT name, archived FROM projects WHERE {col} = ?", (value,)
                ).fetchone()
                if row:
                    note = (" (removed; `planeai project add` its path to restore it)"
                            if row[1] else "")
                    raise ConflictError(
                        f"project {what} {value!r} is taken by project {row[0]!r}{note}")
            cur = c.execute(
                "INSERT INTO projects (name, key_prefix, path, default_branch, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, key_prefix, path, default_branch, now()),
            )
            c.execute("INSERT OR IGNORE INTO key_counters (prefix, last_number) VALUES (?, 0)",
                      (key_prefix,))
            self.append_event(ev.PROJECT_ADDED, project_id=cur.lastrowid,
                              data={"name": name, "key": key_prefix, "path": path})
            return self.get_project_by_id(cur.lastrowid)

    def restore_project(self, project: Project) -> Project:
        """Un-archive a removed project; returns it as stored now."""
        with self.write() as c:
            c.execute("UPDATE projects SET archived = 0 WHERE id = ?", (project.id,))
            self.append_event(ev.PROJECT_RESTORED, project_id=project.id)
        return self.get_project_by_id(project.id)

    def get_project_by_id(self, pid: int) -> Project:
        """The project with id ``pid``; raises NotFoundError."""
        row = self._one(f"SELECT {self._PROJECT_COLS} FROM projects WHERE id = ?", (pid,))
        if not row:
            raise NotFoundError(f"no project with id {pid}")
        return self._project(row)

    def find_project(self, ref: str, *, include_archived: bool = False) -> Project | None:
        """By name, key prefix (case-insensitive) or path; None when there is none."""
        row = self._one(
            f"SELECT {self._PROJECT_COLS} FROM projects"
            " WHERE name = ? OR key_prefix = ? OR path = ? ORDER BY archived LIMIT 1",
            (ref, ref.upper(), ref))
        if row and (include_archived or not row[5]):
            return self._project(row)
        return None

    def project_by_path(self, path: str) -> Project | None:
        """The project registered at exactly ``path`` (archived too), or None."""
        row = self._one(f"SELECT {self._PROJECT_COLS} FROM projects WHERE path = ?", (path,))
        return self._project(row) if row else None

    def list_projects(self, *, include_archived: bool = False) -> list[Project]:
        """Projects by name."""
        sql = f"SELECT {self._PROJECT_COLS} FROM projects"
        if not include_archived:
            sql += " WHERE archived = 0"
        return [self._project(r) for r in self._all(sql + " ORDER BY name")]

    def remove_project(self, project: Project, *, purge: bool) -> int:
        """Archive (tasks kept) or purge (tasks deleted). Returns the number of tasks deleted."""
        with self.write() as c:
            if purge:
                n = c.execute("SELECT COUNT(*) FROM tasks WHERE project_id = ?",
                              (project.id,)).fetchone()[0]
                c.execute("DELETE FROM projects WHERE id = ?", (project.id,))
                self.append_event(ev.PROJECT_PURGED, data={"name": project.name, "tasks": n})
                return n
            c.execute("UPDATE projects SET archived = 1 WHERE id = ?", (project.id,))
            self.append_event(ev.PROJECT_REMOVED, project_id=project.id,
                              data={"name": project.name})
            return 0

    def project_task_counts(self, project_id: int) -> dict[str, int]:
        """The number of the project's tasks in each status (statuses with none left out)."""
        rows = self._all(
            "SELECT status, COUNT(*) FROM tasks WHERE project_id = ? GROUP BY status",
            (project_id,))
        return {s: n for s, n in rows}
