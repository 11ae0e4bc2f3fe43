"""The app's task actions: new task, new subtask, edit, move.

A mixin of the App rather than a controller it owns: Textual finds ``action_*`` methods on
the App (key bindings, the command palette, the key bar's clicks), so a controller would need
one forwarding method per action. Each action opens a dialog and hands its typed result to a
service call run by ``_service`` (planeai.tui.workers); the poller brings the change back.
"""

from __future__ import annotations

from planeai.core.models import Status
from planeai.tui.task_form import TaskFormResult


class TaskActionsMixin:
    def action_new_task(self, parent: str | None = None) -> None:
        from planeai.tui.task_form import TaskForm

        if not self.data.projects:
            self.notify("no project yet: run `planeai project add PATH` or start planeai in a "
                        "git repo", severity="warning")
            return
        project = self._current_project()
        agents, _ = self.agent_choices(project)

        def open_form(draft: TaskFormResult | None = None, error: str = "") -> None:
            def done(form: TaskFormResult | None) -> None:
                if form is not None:
                    # refused (a misspelt @mention, a cycle): the form comes back with
                    # everything typed and the reason, nothing is lost
                    self._service("new task", lambda: self._add_task(form),
                                  lambda t: self.post_message(self.Show(f"t:{t.key}")),
                                  refused=lambda why: open_form(form, why))

            self.push_screen(TaskForm(projects=self.data.projects,
                                      project_id=project.id if project else None,
                                      agents=[a for a, _, _ in agents], parent=parent,
                                      draft=draft, error=error), done)

        open_form()

    def action_new_subtask(self) -> None:
        t = self._current_task()
        if t is not None:
            self.action_new_task(parent=t.key)

    def _add_task(self, form: TaskFormResult):
        """Returns the new Task; raises PlaneaiError for a bad key, cycle or project."""
        from planeai.services import tasks

        store = self.manager.store
        project = store.get_project_by_id(form.project_id)
        return tasks.add_task(store, project, form.title, description=form.description,
                              priority=form.priority, blocked_by=list(form.blocked_by),
                              parent=form.parent, base_branch=form.base_branch,
                              provider=form.provider or None,
                              defaults=tasks.TaskDefaults.of(self.manager.config))

    def action_edit_task(self) -> None:
        from planeai.tui.task_form import TaskForm

        t = self._current_task()
        if t is None:
            return
        project = next((p for p in self.data.projects if p.id == t.project_id), None)
        agents, _ = self.agent_choices(project)

        def open_form(draft: TaskFormResult | None = None, error: str = "") -> None:
            def done(form: TaskFormResult | None) -> None:
                if form is not None:
                    self._service(f"edit {t.key}", lambda: self._edit_task(t, form),
                                  refused=lambda why: open_form(form, why))

            self.push_screen(TaskForm(projects=self.data.projects, project_id=t.project_id,
                                      agents=[a for a, _, _ in agents], task=t, draft=draft,
                                      error=error), done)

        open_form()

    def _edit_task(self, t, form: TaskFormResult):
        """Returns the edited Task; raises PlaneaiError for a bad key or a cycle."""
        from planeai.services import tasks

        return tasks.edit_task(
            self.manager.store, t.key, title=form.title, description=form.description,
            priority=form.priority if form.priority is not None else t.priority,
            parent=form.parent, clear_parent=not form.parent and bool(t.parent_key),
            base_branch=form.base_branch or "", provider=form.provider or "",
            blocked_by=list(form.blocked_by))

    def action_move_task(self) -> None:
        from planeai.tui.move_dialog import MoveDialog

        t = self._current_task()
        if t is None:
            return

        def done(status: Status | None) -> None:
            if status is not None and status is not t.status:
                from planeai.services import tasks

                self._service(f"move {t.key}",
                              lambda: tasks.move(self.manager.store, t.key, status,
                                                 reason="app"))

        self.push_screen(MoveDialog(t.key, t.status), done)
