"""The event log: one append-only table that every change writes to in the same
transaction as the change itself, so the log never disagrees with the tables. The other
table modules call :meth:`EventLog.append_event`; readers (hooks, the app, dispatch) page
through it by id.
"""

from __future__ import annotations

import json

from planeai.core.models import Event
from planeai.store.db import Database, now


class EventLog(Database):
    def append_event(
        self,
        kind: str,
        *,
        project_id: int | None = None,
        task_key: str | None = None,
        session_id: str | None = None,
        data: dict | None = None,
    ) -> int:
        """Append one event (joining the caller's write transaction, if any); returns its id."""
        with self.write() as c:
            cur = c.execute(
                "INSERT INTO events (ts, kind, project_id, task_key, session_id, data)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (now(), kind, project_id, task_key, session_id,
                 json.dumps(data or {}, ensure_ascii=False)),
            )
            return cur.lastrowid

    def events(self, *, after: int = 0, task_key: str | None = None,
               limit: int = 1000, newest: bool = False) -> list[Event]:
        """Up to ``limit`` events with id above ``after`` (of one task if given), oldest first:
        the first ones after ``after``, or with ``newest`` the last ones."""
        sql = "SELECT id, ts, kind, project_id, task_key, session_id, data FROM events WHERE id > ?"
        args: list = [after]
        if task_key:
            sql += " AND task_key = ?"
            args.append(task_key)
        sql += " ORDER BY id DESC LIMIT ?" if newest else " ORDER BY id LIMIT ?"
        args.append(limit)
        rows = self._all(sql, args)
        if newest:
            rows.reverse()
        return [Event(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]

    def task_keys_with_event(self, kind: str) -> list[str]:
        """The distinct task keys that have at least one event of ``kind``."""
        return [r[0] for r in self._all(
            "SELECT DISTINCT task_key FROM events WHERE kind = ? AND task_key IS NOT NULL",
            (kind,))]

    def last_event_id(self) -> int:
        """The id of the newest event, 0 when the log is empty."""
        return self._one("SELECT COALESCE(MAX(id), 0) FROM events")[0]
