"""Trust a repo's `.planeai/` hooks and provider files? Shows exactly what they would run.
Returns True to trust exactly the content shown, False for not now."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class TrustDialog(ModalScreen[bool]):
    DEFAULT_CSS = """
    TrustDialog { align: center middle; }
    TrustDialog > Vertical {
        width: 100; max-width: 95%; height: auto; max-height: 90%;
        border: round $warning; background: $surface; padding: 0 1;
    }
    TrustDialog #what { height: auto; max-height: 20; border: tall $panel; }
    TrustDialog #buttons { height: 1; align-horizontal: right; margin-top: 1; }
    TrustDialog #buttons Button { margin-left: 2; }
    """

    BINDINGS = [Binding("escape,n", "answer(False)", "Not now"),
                Binding("t", "answer(True)", "Trust")]

    def __init__(self, content, changed: bool = False) -> None:
        """``content``: a planeai.services.trust.Content, the exact thing trusted on yes."""
        super().__init__()
        self.content = content
        self.changed = changed

    def compose(self) -> ComposeResult:
        from planeai.services.trust import review_lines

        where = f"{self.content.root}/.planeai"
        head = (f"{where} holds {self.content.what} that run commands"
                + (", changed since you trusted them." if self.changed else ".")
                + "\nNothing of it runs until you trust it. It would run:")
        # Text, not markup: the repo's text is shown as it is
        with Vertical():
            yield Label(Text(head))
            with VerticalScroll(id="what"):
                yield Static(Text("\n".join(review_lines(self.content))))
            yield Label(Text("Trust exactly this? Any change to it asks again. "
                             f"(Later: planeai trust {self.content.root})", style="dim"))
            with Horizontal(id="buttons"):
                yield Button("Not now (n)", id="no", compact=True)
                yield Button("Trust (t)", id="yes", variant="warning", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # the safe answer is the default

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
