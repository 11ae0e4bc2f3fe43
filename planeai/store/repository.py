"""The one module that talks SQL.

Many processes write at once (agents call ``planeai task add`` concurrently), so:
- WAL journal, a generous busy_timeout, autocommit connections (``isolation_level=None``);
- every write is one ``BEGIN IMMEDIATE`` transaction: the write lock is taken up front, so two
  writers never both read a counter and then fail to upgrade (measured: a plain ``BEGIN`` lost
  357 of 400 allocations to "database is locked");
- every change appends to the event log in the same transaction, so the log never disagrees
  with the tables.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

from planeai.core import events as ev
from planeai.core.graph import check_blocker, check_parent
from planeai.core.models import Event, Project, Session, SessionState, Status, Task
from planeai.errors import ConflictError, NotFoundError, PlaneaiError, ValidationError
from planeai.store.schema import MIGRATIONS, SCHEMA_VERSION

BUSY_TIMEOUT_MS = 60_000


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class StoreError(PlaneaiError):
    pass


class DatabaseDamaged(StoreError):
    """SQLite found the file corrupt: nothing may be written to it."""


# primary SQLite result codes (sqlite3.Error.sqlite_errorcode & 0xff)
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 11, 13, 14
_SQLITE_NOTADB = 26
_WRITABLE_HOME = "or set PLANEAI_HOME to a directory you can write"


def damaged(path: Path | str, detail: str) -> DatabaseDamaged:
    return DatabaseDamaged(
        f"database {path} is damaged ({detail}); restore a backup or move it aside")


def database_error(path: Path | str, e: sqlite3.Error) -> StoreError:
    """One line for a failure SQLite reported: what happened to which file, what to do."""
    code = (getattr(e, "sqlite_errorcode", None) or 0) & 0xFF
    msg = str(e)
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or msg.startswith("Could not decode to UTF-8"):
        return damaged(path, msg)
    if code == _SQLITE_FULL or (code == _SQLITE_IOERR and _disk_full(path)):
        return StoreError(f"database {path}: the disk is full ({msg}); nothing was written; "
                          "free some space and run the command again")
    if code in (_SQLITE_READONLY, _SQLITE_PERM):
        return StoreError(f"database {path} cannot be written ({msg}); check the permissions "
                          f"of it and its directory, {_WRITABLE_HOME}")
    if code == _SQLITE_CANTOPEN:
        return StoreError(f"cannot open database {path} ({msg}); check that its directory "
                          f"exists and is writable, {_WRITABLE_HOME}")
    if code == _SQLITE_IOERR:
        return StoreError(f"database {path}: disk I/O error ({e.sqlite_errorname}); nothing "
                          "was written; check the disk (full? read-only? removed?) and run "
                          "the command again")
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StoreError(f"database {path} stayed locked by another process for "
                          f"{BUSY_TIMEOUT_MS // 1000} s ({msg}); run the command again")
    return StoreError(f"database {path}: {msg}")


def _disk_full(path: Path | str) -> bool:
    """SQLite reports a full disk as an I/O error where it maps its -shm file."""
    try:
        st = os.statvfs(Path(path).parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def _private_files(path: Path) -> None:
    """The database and its -wal/-shm are 0600, its directory is created 0700: tasks and
    prompts are nobody else's business. Existing files of ours are fixed (SQLite gives the
    -wal/-shm it creates the database's mode)."""
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        pass
    for f in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            st = os.stat(f)
        except FileNotFoundError:
            continue
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            os.chmod(f, 0o600)


class LeaseLost(PlaneaiError):
    """A lease holder's write was refused: another holder took the lease over."""


class LiveSessionExists(ConflictError):
    """A task that already has a live session was asked for another one."""


_TASK_SELECT = """
    SELECT t.id, t.project_id, p.name, t.key, t.title, t.description, t.status, t.priority,
           par.key, t.base_branch, t.provider, t.created_at, t.updated_at, t.failures,
           t.last_failure, t.held
    FROM tasks t
    JOIN projects p ON p.id = t.project_id
    LEFT JOIN tasks par ON par.id = t.parent_id
"""


class Store:
    """A connection to the planeai database, safe to share between threads.

    Every use of the connection, reads included, holds one lock: a read left pending on a
    shared connection while another thread runs ``BEGIN IMMEDIATE`` made SQLite answer
    "database is locked" at once, without waiting (it cannot upgrade a stale read snapshot).
    Reads fetch all their rows under the lock, so no statement outlives it."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        # One transaction at a time on this connection; the owning thread may nest.
        self._lock = threading.RLock()
        self._depth = 0

    def _all(self, sql: str, args: Sequence = ()) -> list:
        with self._lock:
            return self.conn.execute(sql, args).fetchall()

    def _one(self, sql: str, args: Sequence = ()):
        rows = self._all(sql, args)
        return rows[0] if rows else None

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: Path | str, *, migrate_to: int = SCHEMA_VERSION) -> "Store":
        path = Path(path)
        try:
            _private_files(path)
        except OSError as e:
            from planeai.paths import os_error_line

            raise StoreError(f"cannot open database {path}: {os_error_line(e)}") from None
        try:
            conn = sqlite3.connect(
                str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
            )
        except sqlite3.Error as e:
            raise database_error(path, e) from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            store = cls(conn, path)
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            store._migrate(migrate_to)
        except sqlite3.Error as e:
            conn.close()
            raise database_error(path, e) from None
        except BaseException:
            conn.close()
            raise
        return store

    # Damage is looked for before this connection's first write, not on open: reads then
    # cost nothing, and a write never lands in a corrupt file. PRAGMA quick_check measured
    # 10.5 ms on a 10,000-task (8.4 MB) database, against 0.10 s for `planeai task add`.
    _checked = False

    def check_damage(self) -> None:
        """Raise DatabaseDamaged unless SQLite's quick_check passes."""
        with self._lock:
            try:
                rows = self.conn.execute("PRAGMA quick_check(1)").fetchall()
            except sqlite3.Error as e:
                raise database_error(self.path, e) from None
        result = str(rows[0][0]) if rows else "ok"
        if result != "ok":
            raise damaged(self.path, result.strip().splitlines()[-1])
        self._checked = True

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def schema_version(self) -> int:
        return self._one("PRAGMA user_version")[0]

    def _migrate(self, target: int) -> None:
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"database {self.path} has schema {current}, newer than this planeai "
                f"({SCHEMA_VERSION}); upgrade planeai")
        if current >= target:
            return
        with self.write():
            current = self.schema_version()  # re-read under the lock: another process may have won
            for version in range(current + 1, target + 1):
                for stmt in _split_sql(MIGRATIONS[version - 1]):
                    self.conn.execute(stmt)
                self.conn.execute(f"PRAGMA user_version = {version}")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; nested calls (same thread) join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            if not self._checked:
                self.check_damage()
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.conn
            except BaseException:
                self._depth = 0
                if self.conn.in_transaction:  # SQLite may have rolled back itself (disk full)
                    self.conn.execute("ROLLBACK")
                raise
            else:
                self._depth = 0
                self.conn.execute("COMMIT")

    # ------------------------------------------------------------------ events
    def append_event(
        self,
        kind: str,
        *,
        project_id: int | None = None,
        task_key: str | None = None,
        session_id: str | None = None,
        data: dict | None = None,
    ) -> int:
        with self.write() as c:
            cur = c.execute(
                "INSERT INTO events (ts, kind, project_id, task_key, session_id, data)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (now(), kind, project_id, task_key, session_id,
                 json.dumps(data or {}, ensure_ascii=False)),
            )
            return cur.lastrowid

    def events(self, *, after: int = 0, task_key: str | None = None,
               limit: int = 1000) -> list[Event]:
        sql = "SELECT id, ts, kind, project_id, task_key, session_id, data FROM events WHERE id > ?"
        args: list = [after]
        if task_key:
            sql += " AND task_key = ?"
            args.append(task_key)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        return [
            Event(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]))
            for r in self._all(sql, args)
        ]

    def task_keys_with_event(self, kind: str) -> list[str]:
        return [r[0] for r in self._all(
            "SELECT DISTINCT task_key FROM events WHERE kind = ? AND task_key IS NOT NULL",
            (kind,))]

    def last_event_id(self) -> int:
        return self._one("SELECT COALESCE(MAX(id), 0) FROM events")[0]

    # ------------------------------------------------------------------ projects
    @staticmethod
    def _project(row) -> Project:
        return Project(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6])

    _PROJECT_COLS = "id, name, key_prefix, path, default_branch, archived, created_at"

    def add_project(self, name: str, key_prefix: str, path: str,
                    default_branch: str | None) -> Project:
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
        with self.write() as c:
            c.execute("UPDATE projects SET archived = 0 WHERE id = ?", (project.id,))
            self.append_event(ev.PROJECT_RESTORED, project_id=project.id)
        return self.get_project_by_id(project.id)

    def get_project_by_id(self, pid: int) -> Project:
        row = self._one(f"SELECT {self._PROJECT_COLS} FROM projects WHERE id = ?", (pid,))
        if not row:
            raise NotFoundError(f"no project with id {pid}")
        return self._project(row)

    def find_project(self, ref: str, *, include_archived: bool = False) -> Project | None:
        """By name, key prefix (case-insensitive) or path."""
        row = self._one(
            f"SELECT {self._PROJECT_COLS} FROM projects"
            " WHERE name = ? OR key_prefix = ? OR path = ? ORDER BY archived LIMIT 1",
            (ref, ref.upper(), ref))
        if row and (include_archived or not row[5]):
            return self._project(row)
        return None

    def project_by_path(self, path: str) -> Project | None:
        row = self._one(f"SELECT {self._PROJECT_COLS} FROM projects WHERE path = ?", (path,))
        return self._project(row) if row else None

    def list_projects(self, *, include_archived: bool = False) -> list[Project]:
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
        rows = self._all(
            "SELECT status, COUNT(*) FROM tasks WHERE project_id = ? GROUP BY status",
            (project_id,))
        return {s: n for s, n in rows}

    # ------------------------------------------------------------------ tasks
    def _task_id(self, key: str) -> int:
        row = self._one("SELECT id FROM tasks WHERE key = ?", (key,))
        if not row:
            raise NotFoundError(f"no task {key}")
        return row[0]

    def _rows_to_tasks(self, rows) -> list[Task]:
        tasks = [
            Task(r[0], r[1], r[2], r[3], r[4], r[5], Status(r[6]), r[7], r[8], r[9], r[10],
                 r[11], r[12], failures=r[13], last_failure=r[14], held=bool(r[15]))
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
    ) -> Task:
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
                " parent_id, base_branch, provider, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (project.id, key, number, title, description, priority, parent_id,
                 base_branch, provider, ts, ts),
            )
            task_id = cur.lastrowid
            c.executemany("INSERT OR IGNORE INTO task_blockers (task_id, blocker_id) VALUES (?, ?)",
                          [(task_id, b) for b in blocker_ids])
            self.append_event(ev.TASK_CREATED, project_id=project.id, task_key=key, data={
                "title": title, "priority": priority, "parent": parent_key,
                "blocked_by": list(blocked_by)})
            return self.get_task(key)

    _EDITABLE = {"title", "description", "priority", "base_branch", "provider"}

    def update_task(self, key: str, **fields) -> Task:
        """Edit plain fields; ``parent_key`` (None clears) is handled here too."""
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

    def _parent_of(self, key: str) -> str | None:
        row = self._one(
            "SELECT par.key FROM tasks t LEFT JOIN tasks par ON par.id = t.parent_id"
            " WHERE t.key = ?", (key,))
        return row[0] if row else None

    def set_status(self, key: str, status: Status, *, reason: str | None = None) -> Task:
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
        """Remove the named blockers, or all when None."""
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
        return [r[0] for r in self._all(
            "SELECT t.key FROM tasks t JOIN tasks p ON p.id = t.parent_id WHERE p.key = ?"
            " ORDER BY t.number", (key,))]

    def request_done(self, key: str, *, session_id: str | None,
                     open_subtasks: Sequence[str]) -> None:
        """Record that the agent of ``session_id`` said ``key`` is done while subtasks were
        open: the session's ``done_requested`` and the event in one transaction."""
        with self.write() as c:
            task = self.get_task(key)
            if session_id:
                c.execute("UPDATE sessions SET done_requested = 1, updated_at = ? WHERE id = ?",
                          (now(), session_id))
            self.append_event(ev.TASK_DONE_REQUESTED, project_id=task.project_id, task_key=key,
                              session_id=session_id, data={"open_subtasks": list(open_subtasks)})

    def delete_task(self, key: str, *, recursive: bool = False) -> list[str]:
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

    # ------------------------------------------------------------------ sessions
    _SESSION_SELECT = """
        SELECT s.id, s.name, s.project_id, p.name, t.key, s.provider, s.variant, s.backend,
               s.worktree, s.branch, s.state, s.agent_status, s.exit_code, s.pid, s.autonomous,
               s.argv, s.created_at, s.updated_at, s.exited_at, s.outcome, s.skill,
               s.done_requested
        FROM sessions s JOIN projects p ON p.id = s.project_id
        LEFT JOIN tasks t ON t.id = s.task_id
    """

    @staticmethod
    def _session(r) -> Session:
        return Session(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                       SessionState(r[10]), r[11], r[12], r[13], bool(r[14]), json.loads(r[15]),
                       r[16], r[17], r[18], r[19], r[20], bool(r[21]))

    def add_session(self, *, id: str, name: str, project: Project, task_key: str | None,
                    provider: str, variant: str | None, backend: str, worktree: str | None,
                    branch: str | None, autonomous: bool, argv: list[str],
                    skill: str | None = None, allow_more: bool = False) -> Session:
        """Write a new session named ``name``, or ``name-2``, ``name-3`` ... when taken.

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
        """By id or name."""
        row = self._one(self._SESSION_SELECT + " WHERE s.id = ? OR s.name = ?", (ref, ref))
        if not row:
            raise NotFoundError(f"no session {ref}")
        return self._session(row)

    def sessions_for_task(self, key: str) -> list[Session]:
        return [self._session(r) for r in self._all(
            self._SESSION_SELECT + " WHERE t.key = ? ORDER BY s.created_at", (key,))]

    def list_sessions(self, *, states: Sequence[SessionState] | None = None,
                      project_ids: Sequence[int] | None = None,
                      backend: str | None = None) -> list[Session]:
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
        sql = self._SESSION_SELECT + (" WHERE " + " AND ".join(where) if where else "")
        return [self._session(r) for r in self._all(sql + " ORDER BY s.created_at", args)]

    _SESSION_FIELDS = {"state", "agent_status", "exit_code", "pid", "argv", "worktree", "branch",
                       "exited_at", "outcome"}

    def update_session(self, id: str, *, event: str | None = None,
                       event_data: dict | None = None, **fields) -> Session:
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
        with self.write() as c:
            s = self.get_session(id)
            c.execute("DELETE FROM sessions WHERE id = ?", (id,))
            self.append_event(ev.SESSION_DELETED, project_id=s.project_id, task_key=s.task_key,
                              session_id=id, data={"name": s.name})

    def set_agent_status(self, id: str, status: str) -> Session | None:
        """Record a new agent status once: concurrent observers produce one event, not two."""
        with self.write():
            cur = self.get_session(id)
            if cur.agent_status == status:
                return None
            return self.update_session(id, agent_status=status, event=ev.SESSION_STATUS,
                                       event_data={"from": cur.agent_status, "to": status})

    # ------------------------------------------------------------------ dispatch support
    def record_failure(self, key: str, reason: str, *, hold: bool) -> Task:
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

    def take_lease(self, name: str, holder: str, ttl: float) -> int | None:
        """Take or renew the named lease: its generation (grown on every takeover), or None
        while another holder's lease has not expired."""
        t = time.time()
        with self.write() as c:
            row = c.execute("SELECT holder, expires_at, generation FROM leases WHERE name = ?",
                            (name,)).fetchone()
            if row and row[0] != holder and row[1] > t:
                return None
            if row and row[0] == holder:
                c.execute("UPDATE leases SET expires_at = ? WHERE name = ?", (t + ttl, name))
                return row[2]
            generation = (row[2] if row else 0) + 1
            c.execute("INSERT INTO leases (name, holder, expires_at, generation)"
                      " VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
                      " holder = excluded.holder, expires_at = excluded.expires_at,"
                      " generation = excluded.generation", (name, holder, t + ttl, generation))
            self.append_event(ev.DISPATCH_LEASE, data={
                "holder": holder, "previous": row[0] if row else None,
                "generation": generation})
            return generation

    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Take or renew the named lease; False while another live holder has it."""
        return self.take_lease(name, holder, ttl) is not None

    def renew_lease(self, name: str, holder: str, generation: int, ttl: float) -> bool:
        """Extend a lease still held at ``generation``; False once it was taken over."""
        with self.write() as c:
            cur = c.execute("UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ?"
                            " AND generation = ?", (time.time() + ttl, name, holder, generation))
            return cur.rowcount == 1

    def check_lease(self, name: str, holder: str, generation: int) -> None:
        """The fence: raise :class:`LeaseLost` unless ``holder`` still holds the lease at
        ``generation``. Call it inside the write transaction it guards: a takeover is a
        write too, so none can slip in between the check and the guarded writes."""
        with self.write() as c:
            row = c.execute("SELECT holder, generation FROM leases WHERE name = ?",
                            (name,)).fetchone()
            if row is None or row[0] != holder or row[1] != generation:
                now_held = row[0] if row else "nobody"
                raise LeaseLost(f"the {name} lease was taken over by {now_held}; "
                                "this one stops acting")

    def release_lease(self, name: str, holder: str) -> None:
        # expire rather than delete: the generation must keep growing across holders
        with self.write() as c:
            c.execute("UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ?",
                      (name, holder))

    def lease_holder(self, name: str) -> str | None:
        row = self._one("SELECT holder, expires_at FROM leases WHERE name = ?", (name,))
        return row[0] if row and row[1] > time.time() else None

    def kv_get(self, key: str, default: str | None = None) -> str | None:
        row = self._one("SELECT value FROM kv WHERE key = ?", (key,))
        return row[0] if row else default

    def kv_set(self, key: str, value: str) -> None:
        with self.write() as c:
            c.execute("INSERT INTO kv (key, value) VALUES (?, ?)"
                      " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def integrity_check(self) -> str:
        return self._one("PRAGMA integrity_check")[0]


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (no triggers with inner semicolons here)."""
    body = "\n".join(ln for ln in script.splitlines() if not ln.strip().startswith("--"))
    return [stmt.strip() for stmt in body.split(";") if stmt.strip()]
