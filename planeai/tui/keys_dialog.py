"""Type key names to press in the selected session's terminal (answering an agent's dialog:
``Enter``, ``Down Enter``, ``Escape``, ``1`` ...). Returns the names, checked, or None when
cancelled; a name no backend knows is said in the dialog, which stays open."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from planeai.errors import ValidationError
from planeai.services.session_input import check_keys


class KeysDialog(ModalScreen[list[str] | None]):
    DEFAULT_CSS = """
    KeysDialog { align: center middle; }
    KeysDialog > Vertical {
        width: 80; max-width: 100%; height: auto;
        border: round $accent; background: $surface; padding: 0 1;
    }
    KeysDialog #question { color: $text-muted; }
    KeysDialog #error { color: $error; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, session_name: str, question: list[str] | None = None) -> None:
        super().__init__()
        self.session_name = session_name
        self.question = question or []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Keys for {self.session_name}, separated by spaces (enter sends): "
                        "Enter Escape Tab Up Down Left Right Space BSpace C-c 1 y ...")
            if self.question:
                yield Label("\n".join(self.question), id="question", markup=False)
            yield Input(placeholder="Down Enter", id="keys")
            yield Label("", id="error", markup=False)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            keys = check_keys(event.value.split())
        except ValidationError as e:
            self.query_one("#error", Label).update(str(e))
            return
        self.dismiss(keys)

    def action_cancel(self) -> None:
        self.dismiss(None)
