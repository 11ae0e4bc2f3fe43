"""What the main pane shows for the selected sidebar row: the welcome, a project's counts, a
task's details, or a session's live terminal (or why it cannot be shown).

A mixin of the App holding the watchers of two of its reactives: ``selected_row`` (set on
every highlight and every board load, so a changed task redraws) and ``terminal_shown``
(the terminal or the details). ``i`` shows a session's details (its figures) instead of its
terminal, until the selection moves.

The figures (time, tokens, cost, a project's spend) come from ``_load_figures`` (a worker):
a row is drawn at once with the figures last loaded for it, and again when they arrive.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static

from planeai.core.models import Status
from planeai.errors import PlaneaiError
from planeai.tui.model import BADGES, LIVE, Figures, Row, agent_status, live_counter

FIGURES_AGE = 2.0  # seconds before the figures of the row shown are read again (or sooner
# when its metrics row changed)


class MainPaneMixin:
    def _init_main_pane(self) -> None:
        self.details_pinned: str | None = None   # row id whose details replace its terminal
        self.figures: dict[str, Figures] = {}    # row id -> figures last loaded
        self.last_screens: dict[str, list[str]] = {}  # session id -> its last screen read
        self._figures_asked: tuple[str, float] = ("", 0.0)

    def _ask_figures(self, row: Row, force: bool = False) -> None:
        """Load the figures of ``row`` (a worker), at most every ``FIGURES_AGE`` s."""
        if row.kind == "empty":
            return
        last_id, last_t = self._figures_asked
        if not force and last_id == row.id and time.monotonic() - last_t < FIGURES_AGE:
            return
        self._figures_asked = (row.id, time.monotonic())

        def load() -> None:
            if self._main_gone():
                return
            cur = self.sidebar.current
            if cur is None or cur.id != row.id:
                return  # the cursor moved on: no read for a row passed over
            session = self.row_session(cur)
            self._load_figures(cur.id, cur.kind, cur.project_id, cur.task_key,
                               session.id if session is not None else None)

        # a key held down passes over many rows: read once the cursor rests a moment
        self.set_timer(0.12, load)

    def show_figures(self, row_id: str, figures: Figures) -> None:
        """Figures arrived for ``row_id``: redraw the details if they show that row and the
        figures differ from the ones drawn (a board change asks again; most often they are
        the same, and a redraw of the pane is most of what a change costs)."""
        same = self.figures.get(row_id) == figures
        self.figures[row_id] = figures
        if same:
            return
        if len(self.figures) > 500:
            self.figures = {row_id: figures}
        row = self.sidebar.current
        if row is not None and row.id == row_id and not self.terminal_shown:
            self._draw_details(row)

    def action_toggle_details(self) -> None:
        row = self.sidebar.current
        if row is None or self.row_session(row) is None:
            self.notify("select a task with a session, or a session", severity="warning")
            return
        self.details_pinned = None if self.details_pinned == row.id else row.id
        self.selected_row = row

    def watch_terminal_shown(self, shown: bool) -> None:
        self.query_one("#main").set_class(shown, "-terminal")
        if not shown and self.term.session_name:
            self.term.detach()

    def _set_title(self, text: Text | str) -> None:
        title = self.query_one("#pane-title", Static)
        if title.content != text:  # the same title again (a board change): no repaint
            title.update(text, layout=False)  # one fixed line

    def watch_selected_row(self, row: Row | None) -> None:
        d = self.data
        if not d.loaded:
            return
        if row is not None:
            if self.details_pinned not in (None, row.id):
                self.details_pinned = None  # the selection moved: terminals again
            self._ask_figures(row)
        self._draw_details(row)

    def _draw_details(self, row: Row | None) -> None:
        d = self.data
        figures = self.figures.get(row.id) if row is not None else None
        if row is None:
            self.terminal_shown = False
            self._set_title(Text("planeai", style="bold"))
            self.details.show_welcome(bool(d.projects))
            return
        if row.kind in ("project", "group"):
            self.terminal_shown = False
            p = next((p for p in d.projects if p.id == row.project_id), None)
            if p is None:
                return
            counts = {st: len(d.by_group[(p.id, st)]) for st in Status
                      if d.by_group.get((p.id, st))}
            live = [s for s in d.sessions if s.project_id == p.id and s.state in LIVE]
            self._set_title(Text(p.name, style="bold"))
            self.details.show_project(p, counts, len(live), figures,
                                      [(s, self.last_screens.get(s.id)) for s in live])
            return
        session = self.row_session(row)
        task = d.task_by_key.get(row.task_key or "") if row.kind == "task" else None
        if session is None or self.details_pinned == row.id:
            self.terminal_shown = False
            if session is not None and task is None:
                task = d.task_by_key.get(session.task_key or "")
            if task is not None:
                self._set_title(Text.assemble((task.key, "bold"), f"  {task.title}"))
                children = [t.key for t in d.tasks if t.parent_key == task.key]
                self.details.show_task(task, session, children, figures,
                                       self.last_screens.get(session.id) if session else None)
            elif session is not None:
                self._set_title(Text(session.name, style="bold"))
                self.details.show_session(session, figures, self.last_screens.get(session.id))
            return
        self._show_session(session, task)

    def _show_session(self, s, task) -> None:
        self._set_title(self._session_title(s, task))
        try:
            be = self.manager.backend(s.backend)
        except PlaneaiError as e:
            self._show_lost(s, str(e))
            return
        if be.in_process and be.info(s.name) is None:
            why = ("it ran inside another planeai process, which still runs it"
                   if s.state in LIVE else
                   "it ran inside a planeai process that has ended; its output is gone")
            self._show_lost(s, f"{s.name} is not in this app: {why}.")
            return
        try:
            self.term.attach(be, s.name)
        except PlaneaiError as e:
            self._show_lost(s, f"cannot show {s.name}: {e}")
            return
        self.terminal_shown = True

    def _session_title(self, s, task) -> Text:
        """The pane title over a session's terminal: badge, agent, backend, branch and, while
        it runs, its live token / cost counter."""
        st = agent_status(s)
        sym, colour, label = BADGES[st]
        title = Text.assemble((sym, colour), " ", (s.name, "bold"), f"  {s.agent} · {s.backend}",
                              f" · {label}")
        if s.state not in LIVE and s.exit_code is not None:
            title.append(f" (exit {s.exit_code})")
        if s.branch:
            title.append(f" · {s.branch}", style="dim")
        counter = live_counter(self.session_metrics.get(s.id)) if s.state in LIVE else None
        if counter:
            title.append(f" · {counter}", style="yellow")
        if task is not None:
            title.append(f"  {task.title}", style="dim")
        return title

    def preview_seen(self, session_ids: set[str]) -> None:
        """New screens were read for these sessions: redraw the details when they preview
        one of them (a project's agents, a session's details)."""
        row = self.sidebar.current
        if row is None or self.terminal_shown or self._main_gone():
            return
        if row.kind in ("project", "group"):
            hit = any(s.project_id == row.project_id for s in self.data.sessions
                      if s.id in session_ids)
        else:
            shown = self.row_session(row)
            hit = shown is not None and shown.id in session_ids
        if hit:
            self._draw_details(row)

    def _show_lost(self, s, why: str) -> None:
        self.terminal_shown = False
        row = self.sidebar.current
        self.details.show_lost(s, why, self.figures.get(row.id) if row is not None else None)
