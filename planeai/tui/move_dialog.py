"""Pick a task's new status. Returns the Status, or None when cancelled."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from planeai.core.models import STATUS_ORDER, Status
from planeai.tui.model import STATUS_LABEL


class MoveDialog(ModalScreen[Status | None]):
    DEFAULT_CSS = """
    MoveDialog { align: center middle; }
    MoveDialog > Vertical {
        width: 40; height: auto; border: round $accent; background: $surface; padding: 0 1;
    }
    MoveDialog OptionList { height: auto; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, key: str, current: Status) -> None:
        super().__init__()
        self.key = key
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Move {self.key} to")
            yield OptionList(*[Option(f"{i + 1}  {STATUS_LABEL[s]}", id=s.value)
                               for i, s in enumerate(STATUS_ORDER)], id="statuses")

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        ol.highlighted = STATUS_ORDER.index(self.current)
        ol.focus()

    def on_key(self, event) -> None:
        if event.character and event.character in "1234":
            event.stop()
            self.dismiss(STATUS_ORDER[int(event.character) - 1])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(Status(event.option.id))

    def action_cancel(self) -> None:
        self.dismiss(None)
