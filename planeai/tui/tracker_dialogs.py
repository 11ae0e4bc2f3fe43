"""Take a synced Jira / Plane item into a project: pick the project. Returns its id, or None
when cancelled. A refused take (taken meanwhile, an archived project) comes back in the
dialog with the reason under the list, the same project highlighted.

The item's fields arrive already made inert (``services.trackers.display_row``) and are
shown as plain text, never markup."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, OptionList
from textual.widgets.option_list import Option


class TakeDialog(ModalScreen[int | None]):
    DEFAULT_CSS = """
    TakeDialog { align: center middle; }
    TakeDialog > Vertical {
        width: 72; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    TakeDialog Label { width: 100%; }
    TakeDialog #item { color: $text-muted; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    TakeDialog OptionList { height: auto; max-height: 12; }
    TakeDialog #error { color: $error; height: auto; }
    TakeDialog #buttons { height: 1; align-horizontal: right; margin-top: 1; }
    TakeDialog #buttons Button { margin-left: 2; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, tracker: str, row: dict[str, str], projects: list,
                 project_id: int | None = None, error: str = "") -> None:
        """``row``: the item as ``display_row`` made it; ``projects``: the ones offered."""
        super().__init__()
        self.tracker = tracker
        self.row = row
        self.projects = list(projects)
        self.project_id = project_id
        self.error = error

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Take {self.tracker} {self.row['key']} into a project as a task",
                        id="what", markup=False)
            yield Label(self.row["title"], id="item", markup=False)
            yield OptionList(*[Option(Text(f"{p.name}  {p.key_prefix}"), id=str(p.id))
                               for p in self.projects], id="projects")
            yield Label(self.error, id="error", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Take (enter)", id="take", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#error", Label).display = bool(self.error)
        ol = self.query_one(OptionList)
        ids = [p.id for p in self.projects]
        ol.highlighted = ids.index(self.project_id) if self.project_id in ids else 0
        ol.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id or 0))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "take":
            ol = self.query_one(OptionList)
            if ol.highlighted is not None:
                self.dismiss(self.projects[ol.highlighted].id)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
