"""The new-task / edit-task form (a modal). Returns a TaskFormResult, or None when cancelled."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, TextArea

from planeai.core.models import Project, Task


@dataclass(frozen=True)
class TaskFormResult:
    """The form's fields as typed: ``priority`` None when left empty (the defaults decide),
    ``parent`` / ``base_branch`` None when empty, ``provider`` "" for the default agent."""

    project_id: int | None
    title: str
    description: str
    priority: int | None
    blocked_by: tuple[str, ...]
    parent: str | None
    base_branch: str | None
    provider: str


class TaskForm(ModalScreen[TaskFormResult | None]):
    DEFAULT_CSS = """
    TaskForm { align: center middle; }
    TaskForm > Vertical {
        width: 84; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    TaskForm #form-title { text-style: bold; width: 100%; margin-bottom: 1; }
    TaskForm .field { height: 1; margin-bottom: 1; }
    TaskForm .field Label { width: 14; color: $text-muted; }
    TaskForm .field Input, TaskForm .field Select { width: 1fr; }
    TaskForm #description { height: 5; margin-bottom: 1; }
    TaskForm #buttons { height: 1; align-horizontal: right; }
    TaskForm #buttons Button { margin-left: 2; }
    TaskForm #error { color: $error; height: auto; width: 100%; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Save"),
    ]

    def __init__(self, *, projects: list[Project], project_id: int | None,
                 agents: list[str], task: Task | None = None, parent: str | None = None,
                 draft: TaskFormResult | None = None, error: str = "") -> None:
        """``draft``: what was typed before a refusal, shown again with ``error``."""
        super().__init__()
        self.projects = projects
        self.project_id = draft.project_id if draft and draft.project_id else project_id
        self.agents = agents
        self.edit_task = task
        self.parent_default = parent
        self.draft = draft
        self.error = error

    def _key_prefix(self) -> str:
        """The key of the project the task goes to (its own tasks' keys in the hints)."""
        pid = self.edit_task.project_id if self.edit_task else self.project_id
        p = next((p for p in self.projects if p.id == pid), None)
        p = p or (self.projects[0] if self.projects else None)
        return p.key_prefix if p else "PLA"

    def compose(self) -> ComposeResult:
        t = self.edit_task
        k = self._key_prefix()
        with Vertical():
            yield Label(f"Edit {t.key}" if t else "New task", id="form-title")
            if t is None and len(self.projects) > 1:
                with Horizontal(classes="field"):
                    yield Label("Project")
                    yield Select([(p.name, p.id) for p in self.projects], id="project",
                                 value=self.project_id if self.project_id else self.projects[0].id,
                                 allow_blank=False, compact=True)
            with Horizontal(classes="field"):
                yield Label("Title")
                yield Input(t.title if t else "", id="title", placeholder="what to do",
                            compact=True)
            yield TextArea(t.description if t else "", id="description", soft_wrap=True)
            with Horizontal(classes="field"):
                yield Label("Priority")
                yield Input(str(t.priority) if t else "", id="priority", type="integer",
                            placeholder="0 (higher runs first)", compact=True)
            with Horizontal(classes="field"):
                yield Label("Blocked by")
                yield Input(", ".join(t.blocked_by) if t else "", id="blocked_by",
                            placeholder=f"{k}-1, {k}-2", compact=True, disabled=t is not None)
            with Horizontal(classes="field"):
                yield Label("Parent")
                yield Input((t.parent_key or "") if t else (self.parent_default or ""),
                            id="parent", placeholder=f"{k}-1 (makes it a subtask)", compact=True)
            with Horizontal(classes="field"):
                yield Label("Base branch")
                yield Input((t.base_branch or "") if t else "", id="base_branch",
                            placeholder="default: the repo's branch", compact=True)
            with Horizontal(classes="field"):
                yield Label("Agent")
                current = (t.provider or "") if t else ""
                options = [("(default)", "")] + [(a, a) for a in self.agents]
                if current and current not in self.agents:
                    options.append((current, current))
                yield Select(options, id="provider", value=current, allow_blank=False,
                             compact=True)
            yield Label(self.error, id="error", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Save (ctrl+s)", id="save", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#error", Label).display = bool(self.error)  # no blank line when none
        self.query_one("#description", TextArea).border_title = "Description"
        self.query_one("#title", Input).focus()
        d = self.draft
        if d is not None:  # back after a refusal: what was typed, as it was
            self.query_one("#title", Input).value = d.title
            self.query_one("#description", TextArea).text = d.description
            self.query_one("#priority", Input).value = "" if d.priority is None else str(d.priority)
            self.query_one("#blocked_by", Input).value = ", ".join(d.blocked_by)
            self.query_one("#parent", Input).value = d.parent or ""
            self.query_one("#base_branch", Input).value = d.base_branch or ""
            if d.provider in self.agents:
                self.query_one("#provider", Select).value = d.provider

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "project" and isinstance(event.value, int):
            self.project_id = event.value  # the hints follow the chosen project
            k = self._key_prefix()
            self.query_one("#blocked_by", Input).placeholder = f"{k}-1, {k}-2"
            self.query_one("#parent", Input).placeholder = f"{k}-1 (makes it a subtask)"

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_submit()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_submit()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_submit(self) -> None:
        title = self.query_one("#title", Input).value.strip()
        err = self.query_one("#error", Label)
        if not title:
            err.update("A title is required.")
            err.display = True
            self.query_one("#title", Input).focus()
            return
        prio_text = self.query_one("#priority", Input).value.strip()
        try:
            priority = int(prio_text) if prio_text else None
        except ValueError:
            err.update("Priority must be a whole number.")
            err.display = True
            return
        project_id = self.project_id
        for sel in self.query("#project").results(Select):
            project_id = sel.value  # type: ignore[assignment]
        provider = self.query_one("#provider", Select).value
        self.dismiss(TaskFormResult(
            project_id=project_id,
            title=title,
            description=self.query_one("#description", TextArea).text,
            priority=priority,
            blocked_by=tuple(k.strip() for k in
                             self.query_one("#blocked_by", Input).value.replace(" ", ",")
                             .split(",") if k.strip()),
            parent=self.query_one("#parent", Input).value.strip() or None,
            base_branch=self.query_one("#base_branch", Input).value.strip() or None,
            provider=provider if isinstance(provider, str) else "",
        ))
