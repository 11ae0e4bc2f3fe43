"""The store: the one object that talks SQL, composed from one module per aggregate.

Many processes write at once (agents call ``planeai task add`` concurrently), so:
- WAL journal, a generous busy_timeout, autocommit connections (``isolation_level=None``);
- every write is one ``BEGIN IMMEDIATE`` transaction: the write lock is taken up front, so two
  writers never both read a counter and then fail to upgrade (measured: a plain ``BEGIN`` lost
  357 of 400 allocations to "database is locked");
- every change appends to the event log in the same transaction, so the log never disagrees
  with the tables.

Where things are: the connection, ``write()`` and the database errors in
:mod:`planeai.store.db`; the event log in :mod:`~planeai.store.events`; projects, tasks
(blockers, parents, failures), sessions (the live-session rule, ``done_requested``) and
leases with the kv table in the modules of those names, session metrics (figures that outlive
their sessions) in :mod:`~planeai.store.metrics`, items synced from trackers (Jira, Plane) in
:mod:`~planeai.store.trackers`, Plane agent runs in
:mod:`~planeai.store.plane_runs`. Each is a class over the shared
connection; :class:`Store` is all of them, so callers use one ``store`` for everything.
"""

from __future__ import annotations

from planeai.store.leases import LeaseTable
from planeai.store.metrics import MetricsTable
from planeai.store.plane_runs import PlaneRunTable
from planeai.store.projects import ProjectTable
from planeai.store.sessions import SessionTable
from planeai.store.trackers import TrackerTable


class Store(ProjectTable, SessionTable, LeaseTable, MetricsTable, TrackerTable,
            PlaneRunTable):
    """A connection to the planeai database, safe to share between threads (see
    :class:`planeai.store.db.Database`); open one with :meth:`Store.open`."""
