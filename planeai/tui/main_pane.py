"""What the main pane shows for the selected sidebar row: the welcome, a project's counts, a
task's details, or a session's live terminal (or why it cannot be shown).

A mixin of the App holding the watchers of two of its reactives: ``selected_row`` (set on
every highlight and every board load, so a changed task redraws) and ``terminal_shown``
(the terminal or the details).
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from planeai.core.models import Status
from planeai.errors import PlaneaiError
from planeai.tui.model import BADGES, LIVE, Row, agent_status


class MainPaneMixin:
    def watch_terminal_shown(self, shown: bool) -> None:
        self.query_one("#main").set_class(shown, "-terminal")
        if not shown and self.term.session_name:
            self.term.detach()

    def _set_title(self, text: Text | str) -> None:
        self.query_one("#pane-title", Static).update(text)

    def watch_selected_row(self, row: Row | None) -> None:
        d = self.data
        if not d.loaded:
            return
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
            counts: dict = {}
            for t in d.tasks:
                if t.project_id == p.id:
                    counts[t.status] = counts.get(t.status, 0) + 1
            counts = {s: counts[s] for s in Status if s in counts}
            n_sessions = sum(1 for s in d.sessions if s.project_id == p.id and s.state in LIVE)
            self._set_title(Text(p.name, style="bold"))
            self.details.show_project(p, counts, n_sessions)
            return
        session = self.row_session(row)
        task = d.task_by_key.get(row.task_key or "") if row.kind == "task" else None
        if session is None:
            self.terminal_shown = False
            if task is not None:
                self._set_title(Text.assemble((task.key, "bold"), f"  {task.title}"))
                children = [t.key for t in d.tasks if t.parent_key == task.key]
                self.details.show_task(task, None, children)
            return
        self._show_session(session, task)

    def _show_session(self, s, task) -> None:
        st = agent_status(s)
        sym, colour, label = BADGES[st]
        title = Text.assemble((sym, colour), " ", (s.name, "bold"), f"  {s.agent} · {s.backend}",
                              f" · {label}")
        if s.state not in LIVE and s.exit_code is not None:
            title.append(f" (exit {s.exit_code})")
        if s.branch:
            title.append(f" · {s.branch}", style="dim")
        if task is not None:
            title.append(f"  {task.title}", style="dim")
        self._set_title(title)
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

    def _show_lost(self, s, why: str) -> None:
        self.terminal_shown = False
        self.details.show_lost(s, why)
