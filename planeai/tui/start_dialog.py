"""Start a session: choose the agent (provider / variant) and where it runs. Returns a
StartChoice, or None when cancelled."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, OptionList, RadioButton, RadioSet
from textual.widgets.option_list import Option


@dataclass(frozen=True)
class StartChoice:
    """The agent spec (``provider`` or ``provider-variant``) and the backend to run it on."""

    agent: str
    backend: str


class Radio(RadioButton):
    """A radio button whose dot shows only when chosen: Textual's draws the dot on both and
    tells them apart by colour alone."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]
        return "●" if self.value else " "


class StartDialog(ModalScreen[StartChoice | None]):
    DEFAULT_CSS = """
    StartDialog { align: center middle; }
    StartDialog > Vertical {
        width: 64; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    StartDialog #start-title { text-style: bold; margin-bottom: 1; }
    StartDialog OptionList { height: auto; max-height: 12; }
    StartDialog #backend { height: auto; width: 100%; margin-top: 1; border: none;
        padding: 0; }
    StartDialog #buttons { height: 1; align-horizontal: right; margin-top: 1; }
    StartDialog #buttons Button { margin-left: 2; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, *, target: str, agents: list[tuple[str, str, bool]], default: str,
                 backends: list[tuple[str, str]], backend: str) -> None:
        """agents: (spec, description, installed); backends: (name, description)."""
        super().__init__()
        self.target = target
        self.agents = agents
        self.default = default
        self.backends = backends
        self.backend = backend

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Start a session for {self.target}", id="start-title")
            options = []
            for spec, desc, installed in self.agents:
                label = f"{spec:<18} {desc}" + ("" if installed else "  (not installed)")
                options.append(Option(label, id=spec, disabled=not installed))
            yield OptionList(*options, id="agents")
            yield Label("Runs on:")
            # one choice of several: radio buttons (a filled dot), not checkboxes
            with RadioSet(id="backend"):
                for b, desc in self.backends:
                    radio = Radio(f"{b}: {desc}", value=b == self.backend,
                                        id=f"backend-{b}")
                    radio.tooltip = desc
                    yield radio
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Start", id="start", variant="primary", compact=True)

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        ids = [spec for spec, _, _ in self.agents]
        if self.default in ids:
            ol.highlighted = ids.index(self.default)
        ol.focus()

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        self.backend = (event.pressed.id or "").removeprefix("backend-")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self._start(event.option.id)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            ol = self.query_one(OptionList)
            opt = ol.highlighted_option
            self._start(opt.id if opt else None)
        else:
            self.dismiss(None)

    def _start(self, agent: str | None) -> None:
        if agent:
            self.dismiss(StartChoice(agent=agent, backend=self.backend))

    def action_cancel(self) -> None:
        self.dismiss(None)
