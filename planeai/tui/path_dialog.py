"""Ask for a path (a project's git repo). Returns the text typed, or None when cancelled.
A refused path comes back in the dialog with the reason under it, nothing lost."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label


class PathDialog(ModalScreen[str | None]):
    DEFAULT_CSS = """
    PathDialog { align: center middle; }
    PathDialog > Vertical {
        width: 72; max-width: 100%; height: auto;
        border: round $accent; background: $surface; padding: 0 1;
    }
    PathDialog Label { width: 100%; }
    PathDialog #error { color: $error; height: auto; }
    PathDialog #buttons { height: 1; align-horizontal: right; margin-top: 1; }
    PathDialog #buttons Button { margin-left: 2; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, *, value: str = "", error: str = "",
                 placeholder: str = "/path/to/a/git/repo") -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.error = error
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield Input(self.value, id="path", placeholder=self.placeholder, compact=True)
            yield Label(self.error, id="error", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Add", id="ok", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#error", Label).display = bool(self.error)
        self.query_one("#path", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._done()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._done()
        else:
            self.dismiss(None)

    def _done(self) -> None:
        text = self.query_one("#path", Input).value.strip()
        if not text:
            err = self.query_one("#error", Label)
            err.update("Type the path of a git repo.")
            err.display = True
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
