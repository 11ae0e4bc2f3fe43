"""The app's housekeeping actions: delete a task or a session, add or remove a project, and
jump to the next session waiting for its person.

A mixin of the App for the reason task_actions.py gives. Every destructive step asks first;
a session whose worktree holds unsaved work is refused by the service (never lose work) and
only then offered forced, its work kept in a recovery ref.
"""

from __future__ import annotations

from planeai.tui.model import agent_status


class ManageActionsMixin:
    # ------------------------------------------------------------------ tasks
    def action_delete_task(self) -> None:
        from planeai.tui.confirm import Confirm

        t = self._current_task()
        if t is None:
            return
        kids = [k.key for k in self.data.tasks if k.parent_key == t.key]

        def delete(recursive: bool) -> None:
            from planeai.services import tasks

            self._service(f"delete {t.key}",
                          lambda: tasks.delete(self.manager.store, t.key, recursive=recursive),
                          lambda keys: self.notify(f"deleted {', '.join(keys)}"))

        def first(yes: bool | None) -> None:
            if not yes:
                return
            if not kids:
                delete(False)
                return
            self.push_screen(Confirm(f"{t.key} has subtasks: {', '.join(kids)}. Delete them "
                                     "too (and theirs)?", yes="Delete all"),
                             lambda yes2: delete(True) if yes2 else None)

        self.push_screen(Confirm(f"Delete {t.key} {t.title!r}? This cannot be undone.",
                                 yes="Delete"), first)

    # ------------------------------------------------------------------ sessions
    def action_delete_session(self) -> None:
        from planeai.tui.confirm import Confirm

        s = self._current_session()
        if s is None:
            return

        def deleted(recovery) -> None:
            self.notify(f"deleted {s.name}" + (f"; its work is kept in {recovery}"
                                               if recovery else ""), markup=False)

        def forced(yes: bool | None) -> None:
            if yes:
                self._service(f"delete {s.name}",
                              lambda: self.manager.delete(s.id, force=True), deleted)

        def refused(why: str) -> None:
            self.push_screen(Confirm(f"{why}\n\nDelete anyway, keeping that work in a "
                                     "recovery ref?", yes="Force"), forced)

        def first(yes: bool | None) -> None:
            if yes:
                self._service(f"delete {s.name}", lambda: self.manager.delete(s.id),
                              deleted, refused=refused)

        self.push_screen(Confirm(f"Delete session {s.name}: stop its agent, remove its "
                                 "worktree and forget it?", yes="Delete"), first)

    def action_next_needs_input(self) -> None:
        self._next_with_status("needs_input", "no session needs input")

    def action_next_idle(self) -> None:
        self._next_with_status("idle", "no session is idle")

    def _next_with_status(self, status: str, none: str) -> None:
        """Select the next session whose agent has ``status`` after the selected row
        (wrapping around; one in a folded group is unfolded)."""
        waiting = [f"t:{s.task_key}" if s.task_key else f"s:{s.id}"
                   for s in self.data.sessions if agent_status(s) == status]
        if not waiting:
            self.notify(none, timeout=3)
            return
        index = {r.id: i for i, r in enumerate(self.sidebar.rows)}
        here = self.sidebar.cursor
        # after the cursor first, then from the top, then those in folded groups
        order = sorted(set(waiting), key=lambda rid: (
            rid not in index, index.get(rid, 0) <= here, index.get(rid, 0), rid))
        for rid in order:
            if self.sidebar.select_id(rid):
                self.selected_row = self.sidebar.current
                return

    # ------------------------------------------------------------------ projects
    def action_add_project(self) -> None:
        from planeai.tui.path_dialog import PathDialog

        def open_dialog(value: str = "", error: str = "") -> None:
            def done(path: str | None) -> None:
                if path:
                    self._service("add project", lambda: self._register_project(path),
                                  lambda p: self.post_message(self.Show(f"p:{p.id}")),
                                  refused=lambda why: open_dialog(path, why))

            self.push_screen(PathDialog("Add a project: the path of its git repo",
                                        value=value, error=error), done)

        open_dialog()

    def action_remove_project(self) -> None:
        from planeai.services import projects
        from planeai.tui.confirm import Confirm

        row = self.sidebar.current
        p = next((p for p in self.data.projects if row and p.id == row.project_id), None)
        if p is None:
            self.notify("select a project first", severity="warning")
            return

        def done(yes: bool | None) -> None:
            if yes:
                self._service(f"remove {p.name}",
                              lambda: projects.remove_project(self.manager.store, p),
                              lambda _: self.notify(f"removed {p.name}; its tasks are kept"))

        self.push_screen(Confirm(f"Remove project {p.name} ({p.path}) from planeai? Its "
                                 "tasks are kept: adding the path again restores it.",
                                 yes="Remove"), done)
