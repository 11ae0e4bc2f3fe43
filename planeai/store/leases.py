"""Leases and the key-value table: a named lease with a holder, an expiry and a generation
that grows on every takeover (the dispatcher's fence against a second leader: a holder that
lost its lease gets :class:`LeaseLost` from :meth:`LeaseTable.check_lease` inside the write
it guards), and small settings kept in ``kv``.
"""

from __future__ import annotations

import time

from planeai.core import events as ev
from planeai.errors import PlaneaiError
from planeai.store.events import EventLog


class LeaseLost(PlaneaiError):
    """A lease holder's write was refused: another holder took the lease over."""


class LeaseTable(EventLog):
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
        """Let the lease go if ``holder`` has it (no error when it does not)."""
        # expire rather than delete: the generation must keep growing across holders
        with self.write() as c:
            c.execute("UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ?",
                      (name, holder))

    def lease_holder(self, name: str) -> str | None:
        """Who holds the named lease now, or None when nobody's has not expired."""
        row = self._one("SELECT holder, expires_at FROM leases WHERE name = ?", (name,))
        return row[0] if row and row[1] > time.time() else None

    def kv_get(self, key: str, default: str | None = None) -> str | None:
        """The value stored under ``key``, or ``default``."""
        row = self._one("SELECT value FROM kv WHERE key = ?", (key,))
        return row[0] if row else default

    def kv_set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing any value there."""
        with self.write() as c:
            c.execute("INSERT INTO kv (key, value) VALUES (?, ?)"
                      " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))
