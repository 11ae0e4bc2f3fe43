"""The `?` screen: every key and what the badges mean."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from planeai.tui.actions import NAV_HELP, WHERE_TITLE, actions_for
from planeai.tui.model import BADGES


def help_table() -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column()
    for a in actions_for("app"):
        t.add_row(a.display, Text(a.help))   # not markup: "[review] checks" must show
    t.add_row("", "")
    for keys, what in NAV_HELP:
        t.add_row(keys, what)
    t.add_row("", "")
    badges = Text()
    for sym, colour, label in BADGES.values():
        badges.append(sym, style=colour)
        badges.append(f" {label}   ")
    t.add_row("badges", badges)
    t.add_row("markers", Text("↑2 priority   ⊘PLA-3 blocked by   ↳ subtask   "
                              "+12 -3 a session's changes"))
    for where, title in WHERE_TITLE.items():
        if title:
            t.add_row("", "")
            t.add_row("", Text(title, style="bold"))
            for a in actions_for(where):
                t.add_row(a.display, Text(a.help))
    return t


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    HelpScreen Static { width: 100%; }
    """

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("planeai — keys", style="bold"))
            yield Static(help_table())

    def action_close(self) -> None:
        self.dismiss(None)
