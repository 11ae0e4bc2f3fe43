"""Tracker items: issues synced from Jira or Plane (migration 11), shared by both integrations.

An item is keyed by (source, external_id); ``scope`` is the Jira filter name or the Plane
project it was last seen through. Re-syncs update rows in place (never duplicate them); an
item no longer matched is marked ``gone``, never deleted, so a task taken from it keeps its
link. ``tracker_sync`` holds each scope's state across restarts (cursor, last sync, last
error); ``tracker_writebacks`` makes each write-back (a comment, a transition) happen at most
once: a claim is a row, done once ``done_at`` is set, released when the remote call failed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

from planeai.core import events as ev
from planeai.errors import NotFoundError
from planeai.store.db import now
from planeai.store.events import EventLog

# the remote fields a sync writes; a change in any of them counts as an update
FIELDS = ("external_key", "title", "description", "status", "priority", "assignee", "url",
          "remote_updated")
_COLS = ("id", "source", "scope", "external_id", *FIELDS, "task_key", "gone", "first_seen",
         "last_seen")
_SELECT = f"SELECT {', '.join(_COLS)} FROM tracker_items"


@dataclass(frozen=True)
class RemoteItem:
    """One issue as a tracker returned it (text as received: untrusted)."""

    external_id: str
    external_key: str
    title: str = ""
    description: str = ""          # markdown
    status: str = ""
    priority: str = ""
    assignee: str = ""
    url: str = ""
    remote_updated: str = ""


@dataclass(frozen=True)
class TrackerItem:
    id: int
    source: str
    scope: str
    external_id: str
    external_key: str
    title: str
    description: str
    status: str
    priority: str
    assignee: str
    url: str
    remote_updated: str
    task_key: str | None
    gone: bool
    first_seen: str
    last_seen: str

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("id")
        return d


@dataclass(frozen=True)
class SyncState:
    source: str
    scope: str
    cursor: str | None
    last_sync: str | None
    last_error: str | None
    items: int | None


def _item(r) -> TrackerItem:
    vals = list(r)
    for i in range(4, 12):  # text fields: NULL reads as ""
        vals[i] = vals[i] or ""
    vals[13] = bool(vals[13])
    return TrackerItem(*vals)


class TrackerTable(EventLog):
    def upsert_tracker_items(self, source: str, scope: str,
                             items: Iterable[RemoteItem]) -> dict[str, int]:
        """Insert new items and update changed ones, all in one write; every item given is
        seen now (``gone`` cleared, ``scope`` set). Returns counts: new, updated, unchanged."""
        counts = {"new": 0, "updated": 0, "unchanged": 0}
        ts = now()
        with self.write() as c:
            for it in items:
                row = c.execute(
                    f"SELECT {', '.join(FIELDS)}, scope, gone FROM tracker_items"
                    " WHERE source = ? AND external_id = ?", (source, it.external_id)).fetchone()
                values = tuple(getattr(it, f) for f in FIELDS)
                if row is None:
                    c.execute(
                        f"INSERT INTO tracker_items (source, scope, external_id,"
                        f" {', '.join(FIELDS)}, first_seen, last_seen)"
                        f" VALUES ({', '.join('?' * (len(FIELDS) + 5))})",
                        (source, scope, it.external_id, *values, ts, ts))
                    counts["new"] += 1
                    continue
                changed = tuple(row[:len(FIELDS)]) != values or row[-2] != scope
                counts["updated" if changed or row[-1] else "unchanged"] += 1
                c.execute(
                    f"UPDATE tracker_items SET {', '.join(f + ' = ?' for f in FIELDS)},"
                    " scope = ?, gone = 0, last_seen = ? WHERE source = ? AND external_id = ?",
                    (*values, scope, ts, source, it.external_id))
        return counts

    def mark_tracker_gone(self, source: str, scope: str, seen_ids: Iterable[str]) -> list[str]:
        """Mark the scope's items not in ``seen_ids`` gone (kept, never deleted); returns the
        keys newly marked."""
        seen = set(seen_ids)
        with self.write() as c:
            rows = c.execute("SELECT external_id, external_key FROM tracker_items"
                             " WHERE source = ? AND scope = ? AND gone = 0",
                             (source, scope)).fetchall()
            gone = [(eid, key) for eid, key in rows if eid not in seen]
            c.executemany("UPDATE tracker_items SET gone = 1 WHERE source = ? AND external_id = ?",
                          [(source, eid) for eid, _ in gone])
        return [key for _, key in gone]

    def tracker_items(self, source: str | None = None, *, scope: str | None = None,
                      include_gone: bool = False) -> list[TrackerItem]:
        """Items by source, scope and key (PROJ-2 before PROJ-10)."""
        where, args = [], []
        if source is not None:
            where.append("source = ?")
            args.append(source)
        if scope is not None:
            where.append("scope = ?")
            args.append(scope)
        if not include_gone:
            where.append("gone = 0")
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
        items = [_item(r) for r in self._all(sql, args)]
        return sorted(items, key=lambda i: (i.source, i.scope, _key_order(i.external_key)))

    def tracker_item(self, source: str, key: str) -> TrackerItem:
        """The item with this key (case-insensitive) or external id; raises NotFoundError."""
        row = self._one(_SELECT + " WHERE source = ? AND (external_key = ? OR external_id = ?)"
                        " ORDER BY gone LIMIT 1", (source, key.strip().upper(), key.strip()))
        if row is None:
            raise NotFoundError(f"no {source} item {key!r} synced; run `planeai {source} sync`")
        return _item(row)

    def tracker_item_for_task(self, task_key: str) -> TrackerItem | None:
        row = self._one(_SELECT + " WHERE task_key = ? LIMIT 1", (task_key,))
        return _item(row) if row else None

    def link_tracker_task(self, source: str, external_id: str, task_key: str) -> None:
        """Record the local task an item was taken into (with a tracker.taken event)."""
        with self.write() as c:
            row = c.execute("SELECT external_key FROM tracker_items"
                            " WHERE source = ? AND external_id = ?",
                            (source, external_id)).fetchone()
            if row is None:
                raise NotFoundError(f"no {source} item {external_id!r}")
            c.execute("UPDATE tracker_items SET task_key = ? WHERE source = ? AND external_id = ?",
                      (task_key, source, external_id))
            self.append_event(ev.TRACKER_TAKEN, task_key=task_key,
                              data={"source": source, "key": row[0]})

    # ------------------------------------------------------------------ sync state
    def tracker_sync_state(self, source: str, scope: str) -> SyncState | None:
        row = self._one("SELECT source, scope, cursor, last_sync, last_error, items"
                        " FROM tracker_sync WHERE source = ? AND scope = ?", (source, scope))
        return SyncState(*row) if row else None

    def tracker_sync_states(self, source: str | None = None) -> list[SyncState]:
        sql = "SELECT source, scope, cursor, last_sync, last_error, items FROM tracker_sync"
        rows = self._all(sql + " WHERE source = ? ORDER BY scope", (source,)) if source \
            else self._all(sql + " ORDER BY source, scope")
        return [SyncState(*r) for r in rows]

    _UNSET = object()

    def set_tracker_sync_state(self, source: str, scope: str, *, cursor=_UNSET,
                               last_sync=_UNSET, last_error=_UNSET, items=_UNSET) -> None:
        """Change the given fields of a scope's sync state (the row made when missing)."""
        given = {k: v for k, v in (("cursor", cursor), ("last_sync", last_sync),
                                   ("last_error", last_error), ("items", items))
                 if v is not self._UNSET}
        with self.write() as c:
            c.execute("INSERT OR IGNORE INTO tracker_sync (source, scope) VALUES (?, ?)",
                      (source, scope))
            if given:
                c.execute(f"UPDATE tracker_sync SET {', '.join(k + ' = ?' for k in given)}"
                          " WHERE source = ? AND scope = ?", (*given.values(), source, scope))

    # ------------------------------------------------------------------ write-backs
    def pending_writebacks(self, source: str, kind: str) -> list[TrackerItem]:
        """Taken items whose task is done and that have no ``kind`` write-back row yet."""
        rows = self._all(
            "SELECT " + ", ".join("i." + c for c in _COLS) + " FROM tracker_items i"
            " JOIN tasks t ON t.key = i.task_key"
            " WHERE i.source = ? AND t.status = 'done' AND NOT EXISTS ("
            "   SELECT 1 FROM tracker_writebacks w WHERE w.source = i.source"
            "   AND w.external_id = i.external_id AND w.kind = ?)", (source, kind))
        return [_item(r) for r in rows]

    def claim_writeback(self, source: str, external_id: str, task_key: str, kind: str) -> bool:
        """Claim one write-back; False when it was claimed (or done) before."""
        with self.write() as c:
            cur = c.execute("INSERT OR IGNORE INTO tracker_writebacks"
                            " (source, external_id, task_key, kind) VALUES (?, ?, ?, ?)",
                            (source, external_id, task_key, kind))
            return cur.rowcount == 1

    def finish_writeback(self, source: str, external_id: str, kind: str, *,
                         data: dict | None = None) -> None:
        with self.write() as c:
            row = c.execute("SELECT task_key FROM tracker_writebacks WHERE source = ? AND"
                            " external_id = ? AND kind = ?", (source, external_id, kind)
                            ).fetchone()
            c.execute("UPDATE tracker_writebacks SET done_at = ? WHERE source = ? AND"
                      " external_id = ? AND kind = ?", (now(), source, external_id, kind))
            self.append_event(ev.TRACKER_WRITEBACK, task_key=row[0] if row else None,
                              data={"source": source, "kind": kind, **(data or {})})

    def release_writeback(self, source: str, external_id: str, kind: str) -> None:
        """Undo a claim whose remote call failed, so a later pass tries again."""
        with self.write() as c:
            c.execute("DELETE FROM tracker_writebacks WHERE source = ? AND external_id = ?"
                      " AND kind = ? AND done_at IS NULL", (source, external_id, kind))

    def writebacks(self, source: str, external_id: str) -> dict[str, str | None]:
        """kind -> done_at (None: claimed, not finished) of one item."""
        return dict(self._all("SELECT kind, done_at FROM tracker_writebacks"
                              " WHERE source = ? AND external_id = ?", (source, external_id)))


def _key_order(key: str) -> tuple:
    head, _, num = key.rpartition("-")
    return (head, int(num)) if num.isdigit() else (key, 0)
