"""The app's thread workers and the typed messages they post back.

Threads, never the event loop, touch SQLite, git and the backends' slow paths:
- ``_poll_store`` (a board feed, planeai.services.board, on its own connection) reconciles
  sessions at start, loads the board (one ``BoardLoaded``), then looks at the event log
  every ``poll_interval``: new events become one ``BoardChanged`` with the tasks and
  sessions they touched, read again (the app applies it to those rows); only a project
  added or removed, or an event naming no row, loads everything again;
- ``_observe_sessions`` classifies live sessions' agent status (busy / idle / needs input /
  exited) via ``SessionManager.observe``, a session only when its backend said it changed;
  the store records changes as events, which the poller picks up: one path for our own
  changes and everybody else's. The screens it read are kept (``ScreensSeen``) for the
  list view's previews;
- ``_service`` runs one action that changes something under the lock around the
  SessionManager: a failure is a ``Notice``, a result a ``ServiceDone``;
- ``_run_dispatcher`` ticks the services' Dispatcher: each tick is one ``DispatchReport``;
- ``_diff_stats`` computes each session's ``+N -M`` for the sidebar (``DiffStats``);
- ``_metrics_feed`` reads the metrics rows of the sessions shown and the spend of projects
  with a budget (``MetricsLoaded``: the sidebar's live token / cost counters and budget
  marks); ``_load_figures`` reads what the details panel shows for one row
  (``FiguresLoaded``). The rows are written by whoever observes a session
  (planeai.services.session_watch); the app only reads them, never per frame.

A mixin, not a controller the App owns: ``@work`` methods must live on a DOM node to run as
its workers (cancelled with it, listed by it), and the messages they post go to the App.
The App provides ``manager``, ``svc`` (the service lock), the intervals and ``data``.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from textual import work
from textual.markup import escape
from textual.message import Message
from textual.worker import get_current_worker

from planeai.errors import PlaneaiError
from planeai.tui.model import LIVE, Data, data_of


class BoardLoaded(Message):
    """The poller loaded the board (tasks, sessions, projects)."""

    def __init__(self, data: Data) -> None:
        super().__init__()
        self.data = data


class BoardChanged(Message):
    """Some rows changed (a planeai.services.board.BoardChange): applied to those rows only."""

    def __init__(self, change: Any) -> None:
        super().__init__()
        self.change = change


class ScreensSeen(Message):
    """The observer read new screens of these sessions (their last ones: previews)."""

    def __init__(self, session_ids: set[str]) -> None:
        super().__init__()
        self.session_ids = session_ids


class Notice(Message):
    """A line a worker has for the person: shown as a notification."""

    def __init__(self, text: str, severity: str = "information") -> None:
        super().__init__()
        self.text = text
        self.severity = severity


class ServiceDone(Message):
    """A service action succeeded; ``then`` (if any) runs on the event loop with its result."""

    def __init__(self, what: str, result: Any, then: Callable[[Any], None] | None) -> None:
        super().__init__()
        self.what = what
        self.result = result
        self.then = then


class DiffStats(Message):
    """The +/- of sessions' worktrees changed: session id -> ``+N -M`` (None: no worktree)."""

    def __init__(self, stats: dict[str, str | None]) -> None:
        super().__init__()
        self.stats = stats


class MetricsLoaded(Message):
    """Metrics rows that changed (session id -> SessionMetrics) and projects' spend that
    changed (project id -> metrics.Spend, only projects with a budget)."""

    def __init__(self, rows: dict[str, Any], budgets: dict[int, Any]) -> None:
        super().__init__()
        self.rows = rows
        self.budgets = budgets


class FiguresLoaded(Message):
    """The details panel's figures for the sidebar row ``row_id`` (a model.Figures)."""

    def __init__(self, row_id: str, figures: Any) -> None:
        super().__init__()
        self.row_id = row_id
        self.figures = figures


class DispatchReport(Message):
    """One dispatcher tick: its ``result`` (a TickResult), or None and the ``error`` text."""

    def __init__(self, result: Any = None, error: str | None = None,
                 severity: str = "warning") -> None:
        super().__init__()
        self.result = result
        self.error = error
        self.severity = severity


class DispatchEnded(Message):
    """The dispatcher could not start (``error`` says why); auto-dispatch is off again."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


IDLE_RECHECK = 10.0  # seconds between observations of a session that stays idle
# the same for a session of another process's backend (tmux, the daemon): its output and its
# end arrive as notifications, so this is only a safety net for one that went missing
SAFETY_RECHECK = 30.0
# seconds before a session's +/- is computed again though its status did not change: a busy
# agent writes files; an idle or ended one's worktree changes only by hand, now and then
STATS_BUSY, STATS_QUIET = 3.0, 15.0
# seconds between reads of the metrics rows (an observer rewrites a live one every 5 s)
METRICS_POLL = 2.0
METRICS_ENDED = 30.0  # seconds between reads of an ended session's row not final yet


class WorkersMixin:
    """The App's worker loops (see the module docstring). The App calls ``_init_workers``
    in ``__init__``, starts ``_poll_store`` / ``_observe_sessions`` once mounted and calls
    ``_stop_workers`` when unmounting."""

    def _init_workers(self) -> None:
        self._wake = threading.Event()           # poll now
        self._stop = threading.Event()
        self._observe_wake = threading.Event()
        self._activity: dict[str, float] = {}    # session name -> last output (local)
        self._subs: dict[str, Callable[[], None]] = {}
        self._observed: dict[str, tuple[float, str]] = {}
        self._stats_wake = threading.Event()
        self._stats_reset = False                # compute every session's +/- again
        self.diff_stats: dict[str, str | None] = {}   # session id -> "+N -M" (the sidebar)
        self._metrics_wake = threading.Event()
        self.observe_rounds = 0                  # observer passes done (tests, bench)

    def _stop_workers(self) -> None:
        self._stop.set()
        self._wake.set()
        self._observe_wake.set()
        self._stats_wake.set()
        self._metrics_wake.set()
        for unsub in list(self._subs.values()):
            try:
                unsub()
            except Exception:
                pass
        self._subs.clear()

    def wake(self) -> None:
        """Make the poller look at the store now. Returns None."""
        self._wake.set()

    def _notice(self, text: str, severity: str = "information") -> None:
        self.post_message(Notice(text, severity))  # thread-safe; dropped once the app closes

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll_store(self) -> None:
        from planeai.services.board import BoardFeed

        worker = get_current_worker()
        feed = BoardFeed.beside(self.manager.store)
        try:
            if self.do_reconcile:
                try:
                    with self.svc:
                        self.manager.reconcile()
                except PlaneaiError as e:
                    self._notice(f"reconcile: {e}", "warning")
            if self.initial is not None:
                # the feed must know what is shown before it can say what changed: read it
                # here, off the event loop (the first frame already has the preloaded data)
                last = self.initial[0]
                self.initial = None
                feed.snapshot()
            else:
                last = feed.mark()
                self.post_message(BoardLoaded(data_of(feed.snapshot())))
            while not worker.is_cancelled and not self._stop.is_set():
                self._wake.wait(self.poll_interval)
                self._wake.clear()
                if worker.is_cancelled or self._stop.is_set():
                    break
                try:
                    found = feed.changes(last)
                    if found is None:
                        continue
                    last, change = found
                    if change is None:  # a project came or went, an unknown event: all
                        self.post_message(BoardLoaded(data_of(feed.snapshot())))
                    elif change:
                        self.post_message(BoardChanged(change))
                except Exception as e:  # a locked or broken db must not end the app
                    self._notice(f"store: {e}", "error")
                    self._stop.wait(2)
        finally:
            feed.close()

    @work(thread=True, exclusive=True, group="observe", exit_on_error=False)
    def _observe_sessions(self) -> None:
        """Classify live sessions; cost grows with change, not with the number of sessions:
        every live session is subscribed to (its backend reports output and the end: for
        tmux the control-mode %output stream, the end a mark the pane's wrapper prints,
        planeai.backends.tmux), and a session is read only when it printed, ended, or is
        still busy or starting; an idle one only every ``IDLE_RECHECK`` (in-process) or
        ``SAFETY_RECHECK`` seconds, for a missed notification. The store records a status
        change as an event, which the poller's next ``BoardChanged`` carries; the screens
        read are kept for previews (``ScreensSeen``)."""
        worker = get_current_worker()
        while not worker.is_cancelled and not self._stop.is_set():
            self._observe_wake.wait(self.observe_interval)
            self._observe_wake.clear()
            if self._stop.is_set():
                break
            self.observe_rounds += 1
            now = time.monotonic()
            seen: set[str] = set()
            live = [s for s in self.data.sessions if s.state in LIVE]
            live_names = {s.name for s in live}
            for name in [n for n in self._subs if n not in live_names]:
                try:
                    self._subs.pop(name)()
                except Exception:
                    pass
            for s in live:
                if self._stop.is_set():
                    break
                try:
                    be = self.manager.backend(s.backend)
                except PlaneaiError:
                    continue
                if be.in_process and be.info(s.name) is None:
                    continue  # another planeai process runs it
                if s.name not in self._subs:
                    try:
                        # a remote host's sessions report activity from one poll, not a
                        # stream each (SSH allows few channels per connection)
                        sub = getattr(be, "subscribe_activity", None) or be.subscribe
                        self._subs[s.name] = sub(s.name, self._on_activity)
                    except PlaneaiError:
                        pass  # e.g. still being set up: read every round until subscribed
                last_t, last_status = self._observed.get(s.id, (0.0, ""))
                active = self._activity.get(s.name, 0.0) > last_t
                recheck = IDLE_RECHECK if be.in_process else SAFETY_RECHECK
                if not (active or last_status in ("", "busy", "starting")
                        or s.name not in self._subs or now - last_t > recheck):
                    continue
                # output that comes while it is read is newer than this: read again next round
                seen_at = time.monotonic()
                try:
                    with self.svc:
                        view = self.manager.observe(s.id)
                    self._observed[s.id] = (seen_at, view.status.value)
                    if view.snapshot is not None:  # kept for previews: no read of their own
                        lines = view.snapshot.lines
                        if self.last_screens.get(s.id) != lines:
                            self.last_screens[s.id] = lines
                            seen.add(s.id)
                except Exception:  # a backend hiccup: try again next round
                    self._observed[s.id] = (seen_at, "")
            if seen:
                self.post_message(ScreensSeen(seen))

    @work(thread=True, exclusive=True, group="stats", exit_on_error=False)
    def _diff_stats(self) -> None:
        """The sidebar's +/- per session: ``git diff --numstat`` of each session's worktree,
        on a connection of its own, never under the service lock. Computed again when the
        session's state or agent status changed, else every ``STATS_BUSY`` seconds while its
        agent is busy (``STATS_QUIET`` when idle or ended). Posts a ``DiffStats`` only when
        a number moved."""
        from planeai.services import review
        from planeai.services.board import BoardFeed

        worker = get_current_worker()
        feed = BoardFeed.beside(self.manager.store)
        seen: dict[str, tuple[tuple, float]] = {}   # id -> (what it was computed for, when)
        try:
            while not worker.is_cancelled and not self._stop.is_set():
                if self._stats_reset:
                    self._stats_reset = False
                    seen.clear()
                changed: dict[str, str | None] = {}
                sessions = list(self.data.sessions)
                for s in sessions:
                    if self._stop.is_set():
                        break
                    if not (s.worktree and s.task_key) or s.backend.startswith("host:"):
                        continue  # (a host's worktree is not on this disk)
                    key = (s.state, s.agent_status, s.worktree)
                    last = seen.get(s.id)
                    busy = s.state in LIVE and s.agent_status in (None, "busy", "starting")
                    age = STATS_BUSY if busy else STATS_QUIET
                    if last is not None and last[0] == key and time.monotonic() - last[1] < age:
                        continue
                    try:
                        summary = review.session_summary(feed.store, s)
                    except Exception:  # a worktree mid-removal, a locked db: next round
                        summary = None
                    seen[s.id] = (key, time.monotonic())
                    if self.diff_stats.get(s.id, "?") != summary:
                        changed[s.id] = summary
                if changed:
                    self.post_message(DiffStats(changed))
                self._stats_wake.wait(1.0)
                self._stats_wake.clear()
        finally:
            feed.close()

    @work(thread=True, exclusive=True, group="metrics", exit_on_error=False)
    def _metrics_feed(self) -> None:
        """Every ``METRICS_POLL`` seconds: the metrics row of each running session shown (one
        indexed read each; an ended one's when its session changed, else every
        ``METRICS_ENDED`` s until its row is final, then never), and the spend of each
        project with a budget (one sum each). Posts a ``MetricsLoaded`` only when something
        changed."""
        from planeai.services import metrics
        from planeai.services.board import BoardFeed

        worker = get_current_worker()
        feed = BoardFeed.beside(self.manager.store)
        seen: dict[str, str] = {}          # session id -> updated_at of the row posted
        final: set[str] = set()            # ended and read to the end: never read again
        checked: dict[str, tuple[str, float]] = {}  # ended session -> (updated_at, when read)
        spends: dict[int, Any] = {}
        try:
            while not worker.is_cancelled and not self._stop.is_set():
                rows: dict[str, Any] = {}
                budgets: dict[int, Any] = {}
                try:
                    for s in list(self.data.sessions):
                        if s.state not in LIVE:
                            if s.id in final:
                                continue
                            # an ended one changes only while it settles: now and then
                            last = checked.get(s.id)
                            if (last is not None and last[0] == s.updated_at
                                    and time.monotonic() - last[1] < METRICS_ENDED):
                                continue
                            checked[s.id] = (s.updated_at, time.monotonic())
                        m = metrics.session_metrics(feed.store, s.id)
                        if m is None:
                            continue
                        if m.final and s.state not in LIVE:
                            final.add(s.id)
                        if seen.get(s.id) != m.updated_at:
                            seen[s.id] = m.updated_at
                            rows[s.id] = m
                    config = self.manager.config.budgets
                    for p in list(self.data.projects):
                        budget = config.for_project(p.name)
                        if budget <= 0:
                            continue
                        sp = metrics.spent(feed.store, p.id, budget=budget)
                        if spends.get(p.id) != sp:
                            spends[p.id] = budgets[p.id] = sp
                except Exception:  # a locked or busy db: next round
                    pass
                if rows or budgets:
                    self.post_message(MetricsLoaded(rows, budgets))
                self._metrics_wake.wait(METRICS_POLL)
                self._metrics_wake.clear()
        finally:
            feed.close()

    @work(thread=True, exclusive=True, group="figures", exit_on_error=False)
    def _load_figures(self, row_id: str, kind: str, project_id: int | None,
                      task_key: str | None, session_id: str | None) -> None:
        """What the details panel shows for a row: a session's metrics row; a task's sum over
        all its sessions and retries (deleted and archived ones too); a project's summary."""
        from datetime import datetime, timezone

        from planeai.services import metrics
        from planeai.services.board import BoardFeed
        from planeai.tui.model import Figures, ProjectFigures

        try:
            with BoardFeed.beside(self.manager.store) as feed:
                store = feed.store
                session = metrics.session_metrics(store, session_id) if session_id else None
                task = project = None
                if kind in ("task", "session") and task_key and project_id is not None:
                    rows = [m for m in metrics.history(store, project_ids=[project_id])
                            if m.task_key == task_key]
                    task = metrics.group(rows, "task")[0] if rows else None
                elif kind in ("project", "group") and project_id is not None:
                    name = next((p.name for p in self.data.projects if p.id == project_id), "")
                    budget = self.manager.config.budgets.for_project(name)
                    today = datetime.now(timezone.utc).date().isoformat()
                    rows = metrics.history(store, project_ids=[project_id], since=today)
                    project = ProjectFigures(
                        sum(m.cost_usd or 0.0 for m in rows), len(rows),
                        sum(m.busy_s for m in rows),
                        metrics.spent(store, project_id, budget=budget))
        except Exception:  # a locked db, a project removed meanwhile: nothing to show
            return
        self.post_message(FiguresLoaded(row_id, Figures(session, task, project)))

    def refresh_stats(self) -> None:
        """Compute every +/- again now (after a commit or a merge). Returns None."""
        self._stats_reset = True
        self._stats_wake.set()

    def _on_activity(self, name: str, data: bytes) -> None:
        self._activity[name] = time.monotonic()
        if not data:
            self._observe_wake.set()

    @work(thread=True, group="service", exit_on_error=False)
    def _service(self, what: str, fn: Callable[[], Any],
                 then: Callable[[Any], None] | None = None,
                 refused: Callable[[str], None] | None = None, lock: bool = True) -> None:
        """Run ``fn`` under the service lock (``lock=False``: without it, for reads and for
        checks that may run for minutes); its failure becomes a ``Notice`` naming
        ``what`` (or, with ``refused``, is handed to it on the event loop: a form reopens
        with what was typed), its result a ``ServiceDone`` carrying ``then``."""
        try:
            if lock:
                with self.svc:
                    result = fn()
            else:
                result = fn()
        except PlaneaiError as e:
            if refused is not None:
                self.post_message(ServiceDone(what, str(e), refused))
            else:  # notifications are markup: "[review] checks" in an error must show
                self._notice(escape(f"{what}: {e}"), "error")
            return
        except Exception as e:  # never a crash: say what broke
            self._notice(escape(f"{what} failed: {type(e).__name__}: {e}"), "error")
            return
        finally:
            self._wake.set()
            self._observe_wake.set()
        self.post_message(ServiceDone(what, result, then))

    @work(thread=True, group="dispatch", exit_on_error=False)
    def _run_dispatcher(self, stop: threading.Event) -> None:
        """The services' Dispatcher, one tick at a time under the app's service lock."""
        try:
            from planeai.services.dispatch import Dispatcher
            from planeai.services.notify import Notifier

            with self.svc:
                d = Dispatcher(self.manager, notifier=Notifier(self.manager.config.notify))
            poll = self.manager.config.dispatch.poll_interval
        except Exception as e:
            self.post_message(DispatchEnded(f"auto-dispatch: {e}"))
            return
        try:
            while not stop.is_set() and not self._stop.is_set():
                try:
                    with self.svc:
                        report = DispatchReport(d.tick())
                except PlaneaiError as e:
                    report = DispatchReport(error=f"auto-dispatch: {e}")
                except Exception as e:
                    report = DispatchReport(
                        error=f"auto-dispatch failed: {type(e).__name__}: {e}", severity="error")
                self.post_message(report)
                self._wake.set()
                stop.wait(poll)
        finally:
            try:
                with self.svc:
                    d.release()
            except Exception:
                pass
