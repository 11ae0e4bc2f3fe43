"""The selection: the sidebar row's task, session or project, and the agents a dialog offers.

A mixin of the App: the actions (task_actions.py, session_actions.py) and the main pane ask
it; it reads the App's ``sidebar``, ``data`` and ``manager``.
"""

from __future__ import annotations

from planeai.errors import PlaneaiError
from planeai.tui.model import Row


class SelectionMixin:
    def row_session(self, row: Row | None):
        """Returns the Session a row stands for (a session row, or a task's latest session),
        or None."""
        if row is None:
            return None
        if row.kind == "session":
            return self.data.session_by_id.get(row.session_id or "")
        if row.kind == "task":
            return self.data.task_session(row.task_key or "")
        return None

    def _current_task(self, quiet: bool = False):
        """Returns the selected row's Task, or None (saying so unless ``quiet``)."""
        row = self.sidebar.current
        if row is not None and row.kind in ("task", "session") and row.task_key:
            t = self.data.task_by_key.get(row.task_key or "")
            if t is not None:
                return t
        if not quiet:
            self.notify("select a task first", severity="warning")
        return None

    def _current_session(self):
        """Returns the selected row's Session, or None (saying so)."""
        s = self.row_session(self.sidebar.current)
        if s is None:
            self.notify("select a task with a session, or a session", severity="warning")
        return s

    def _current_project(self):
        """Returns the selected row's Project (the only one when there is one), or None."""
        row = self.sidebar.current
        pid = row.project_id if row else None
        if pid is None and len(self.data.projects) == 1:
            pid = self.data.projects[0].id
        return next((p for p in self.data.projects if p.id == pid), None)

    def agent_choices(self, project) -> tuple[list[tuple[str, str, bool]], str]:
        """Returns the agents a dialog offers, (spec, description, installed) with the
        installed ones first, and the default spec."""
        from planeai.core.agents import agent_name

        reg = self.manager.registry(project)
        agents = []
        installed_of = {p.name: p.resolve_binary() is not None for p in reg.providers.values()}
        # installed agents first (the shell among them), then the ones still to install
        for p in sorted(reg.providers.values(),
                        key=lambda p: (not installed_of[p.name], p.name != "shell", p.name)):
            installed = installed_of[p.name]
            agents.append((p.name, p.display_name, installed))
            for v in p.variants.values():
                agents.append((agent_name(p.name, v.name), v.description or v.model, installed))
        try:
            default = reg.default(self.manager.config.defaults.provider)
        except PlaneaiError:
            default = "shell"
        return agents, default
