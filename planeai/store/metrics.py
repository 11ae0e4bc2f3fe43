"""Session metrics: one row per session with its times, tokens and estimated cost (see
planeai.services.metrics, which computes them). The rows are not tied to the sessions table:
a deleted or archived session, even a purged project, keeps its figures. Also the status
timeline of one session, read from the event log by session id (indexed by migration 10).
"""

from __future__ import annotations

import json
from typing import Sequence

from planeai.agents_usage.usage import SessionMetrics, Tokens
from planeai.core import events as ev
from planeai.store.db import now
from planeai.store.events import EventLog

_COLUMNS = ("session_id", "name", "project_id", "project", "task_key", "provider", "agent",
            "started_at", "ended_at", "exit_code", "wall_s", "busy_s", "idle_s",
            "needs_input_s", "input_tokens", "output_tokens", "cache_write_tokens",
            "cache_read_tokens", "model", "cost_usd", "cost_unpriced", "models", "home",
            "sources", "final", "updated_at")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM session_metrics"
# the events that move a session between statuses (planeai.services.metrics.timeline)
TIMELINE_KINDS = (ev.SESSION_STARTED, ev.SESSION_RESTARTED, ev.SESSION_STATUS,
                  ev.SESSION_EXITED, ev.SESSION_EXIT_CODE, ev.SESSION_STOPPED,
                  ev.SESSION_LOST, ev.SESSION_ABORTED, ev.SESSION_FAILED)


def _metrics(r) -> SessionMetrics:
    models = {m: Tokens.from_list(v) for m, v in json.loads(r[21]).items()}
    return SessionMetrics(
        session_id=r[0], name=r[1], project_id=r[2], project=r[3], task_key=r[4],
        provider=r[5], agent=r[6], started_at=r[7], ended_at=r[8], exit_code=r[9],
        wall_s=r[10], busy_s=r[11], idle_s=r[12], needs_input_s=r[13], models=models,
        cost_usd=r[19], unpriced=tuple(json.loads(r[20] or "[]")), home=r[22],
        sources=json.loads(r[23]), final=bool(r[24]), updated_at=r[25])


class MetricsTable(EventLog):
    def get_metrics(self, session_id: str) -> SessionMetrics | None:
        row = self._one(_SELECT + " WHERE session_id = ?", (session_id,))
        return _metrics(row) if row else None

    def save_metrics(self, m: SessionMetrics) -> None:
        """Insert or replace the row of ``m.session_id`` (one write)."""
        t = m.tokens
        m.updated_at = now()
        values = (m.session_id, m.name, m.project_id, m.project, m.task_key, m.provider,
                  m.agent, m.started_at, m.ended_at, m.exit_code, m.wall_s, m.busy_s,
                  m.idle_s, m.needs_input_s, t.input if t else None, t.output if t else None,
                  t.cache_write if t else None, t.cache_read if t else None, m.model,
                  m.cost_usd, json.dumps(list(m.unpriced)),
                  json.dumps({k: v.as_list() for k, v in m.models.items()}), m.home,
                  json.dumps(m.sources), int(m.final), m.updated_at)
        with self.write() as c:
            c.execute(f"INSERT OR REPLACE INTO session_metrics ({', '.join(_COLUMNS)}) VALUES"
                      f" ({', '.join('?' * len(_COLUMNS))})", values)

    def list_metrics(self, *, project_ids: Sequence[int] | None = None,
                     since: str | None = None, task_key: str | None = None
                     ) -> list[SessionMetrics]:
        """Rows matching every filter given (``since``: started at or after, ISO text),
        oldest first."""
        where, args = [], []
        if project_ids is not None:
            where.append(f"project_id IN ({','.join('?' * len(project_ids)) or 'NULL'})")
            args += list(project_ids)
        if since:
            where.append("started_at >= ?")
            args.append(since)
        if task_key:
            where.append("task_key = ?")
            args.append(task_key)
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
        return [_metrics(r) for r in self._all(sql + " ORDER BY started_at", args)]

    def spent_usd(self, *, project_id: int | None = None, task_key: str | None = None
                  ) -> tuple[float, int, int]:
        """(estimated USD, sessions counted, sessions whose cost is unknown) of a project or
        a task, every session ever (deleted ones too)."""
        where, args = [], []
        if project_id is not None:
            where.append("project_id = ?")
            args.append(project_id)
        if task_key is not None:
            where.append("task_key = ?")
            args.append(task_key)
        row = self._one("SELECT COALESCE(SUM(cost_usd), 0), COUNT(*),"
                        " SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END)"
                        " FROM session_metrics" + (" WHERE " + " AND ".join(where)
                                                   if where else ""), args)
        return float(row[0]), int(row[1]), int(row[2] or 0)

    def session_timeline(self, session_id: str) -> list[tuple[str, str, dict]]:
        """(ts, kind, data) of the events that move ``session_id`` between statuses, oldest
        first."""
        marks = ",".join("?" * len(TIMELINE_KINDS))
        return [(r[0], r[1], json.loads(r[2])) for r in self._all(
            f"SELECT ts, kind, data FROM events WHERE session_id = ? AND kind IN ({marks})"
            " ORDER BY id", (session_id, *TIMELINE_KINDS))]
