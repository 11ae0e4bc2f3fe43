"""Plane agent runs (migration 12): which task and session each run got, and where its
activities stand (planeai.services.plane_agent keeps the state machine; this keeps the rows).
``plane_seen`` remembers webhook delivery ids and feed activity ids: marking one is a single
``INSERT OR IGNORE``, so two receivers of the same delivery never both act on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from planeai.store.db import now
from planeai.store.events import EventLog

# a run planeai still watches; the others are over (answered runs wait for a reply, which
# makes them active again)
ACTIVE = ("starting", "working", "awaiting")
_COLS = ("run_id", "workspace", "issue_id", "project_id", "task_key", "session_id", "state",
         "agent_status", "last_post", "last_excerpt", "error", "created_at", "updated_at")


@dataclass(frozen=True)
class PlaneRun:
    run_id: str
    workspace: str
    issue_id: str | None
    project_id: str | None
    task_key: str | None
    session_id: str | None
    state: str              # starting, working, awaiting, answered, failed
    agent_status: str | None
    last_post: float        # time.time() of the last activity posted
    last_excerpt: str | None
    error: str | None
    created_at: str
    updated_at: str


class PlaneRunTable(EventLog):
    def add_plane_run(self, run_id: str, workspace: str, *, issue_id: str | None,
                      project_id: str | None) -> bool:
        """Record a new run in state ``starting``; False when it was known already."""
        ts = now()
        with self.write() as c:
            cur = c.execute("INSERT OR IGNORE INTO plane_runs (run_id, workspace, issue_id,"
                            " project_id, state, created_at, updated_at)"
                            " VALUES (?, ?, ?, ?, 'starting', ?, ?)",
                            (run_id, workspace, issue_id, project_id, ts, ts))
            return cur.rowcount == 1

    def plane_run(self, run_id: str) -> PlaneRun | None:
        row = self._one(f"SELECT {', '.join(_COLS)} FROM plane_runs WHERE run_id = ?",
                        (run_id,))
        return PlaneRun(*row) if row else None

    def plane_runs(self, *, active: bool = False) -> list[PlaneRun]:
        sql = f"SELECT {', '.join(_COLS)} FROM plane_runs"
        if active:
            sql += f" WHERE state IN ({', '.join(repr(s) for s in ACTIVE)})"
        return [PlaneRun(*r) for r in self._all(sql + " ORDER BY created_at, run_id")]

    def update_plane_run(self, run_id: str, **fields) -> PlaneRun:
        bad = set(fields) - set(_COLS[2:-2])
        if bad:
            raise ValueError(f"not plane_runs columns: {sorted(bad)}")
        fields["updated_at"] = now()
        with self.write() as c:
            c.execute(f"UPDATE plane_runs SET {', '.join(k + ' = ?' for k in fields)}"
                      " WHERE run_id = ?", (*fields.values(), run_id))
        return self.plane_run(run_id)

    def mark_plane_seen(self, kind: str, ident: str) -> bool:
        """Remember a delivery or activity id: True the first time, False ever after."""
        with self.write() as c:
            cur = c.execute("INSERT OR IGNORE INTO plane_seen (kind, id, seen_at)"
                            " VALUES (?, ?, ?)", (kind, ident, time.time()))
            return cur.rowcount == 1

    def plane_seen(self, kind: str, ident: str) -> bool:
        return self._one("SELECT 1 FROM plane_seen WHERE kind = ? AND id = ?",
                         (kind, ident)) is not None

    def forget_plane_seen(self, older_than: float) -> None:
        """Drop ids seen more than ``older_than`` seconds ago (past any replay window)."""
        with self.write() as c:
            c.execute("DELETE FROM plane_seen WHERE seen_at < ?", (time.time() - older_than,))
