"""Start a session: choose the agent (provider / variant), where it runs, and how: a first
prompt, yolo (the agent's permission-skipping flag), autonomous (the task's own prompt, as the
dispatcher starts it), in a sandbox or not (default: as [sandbox] configures it for that task,
agent and project). Returns a StartChoice, or None when cancelled."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, OptionList, RadioButton, RadioSet
from textual.widgets.option_list import Option


@dataclass(frozen=True)
class StartChoice:
    """The agent spec (``provider`` or ``provider-variant``), the backend to run it on, and
    the start options (``prompt`` "" for none; ``sandbox`` None: as configured)."""

    agent: str
    backend: str
    yolo: bool = False
    autonomous: bool = False
    prompt: str = ""
    sandbox: bool | None = None


# the sandbox choice: as configured ([sandbox], per task, agent and project), on, off
SANDBOX_CHOICES: list[tuple[bool | None, str]] = [(None, "default"), (True, "on"),
                                                  (False, "off")]


class Radio(RadioButton):
    """A radio button whose dot shows only when chosen: Textual's draws the dot on both and
    tells them apart by colour alone."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]
        return "●" if self.value else " "


class Tick(Checkbox):
    """A checkbox that shows a tick only when on (Textual's draws an X either way)."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]
        return "✓" if self.value else " "


class StartDialog(ModalScreen[StartChoice | None]):
    DEFAULT_CSS = """
    StartDialog { align: center middle; }
    StartDialog > Vertical {
        width: 64; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    StartDialog #start-title { text-style: bold; margin-bottom: 1; }
    StartDialog OptionList { height: auto; max-height: 8; }
    StartDialog #backend { height: auto; width: 100%; border: none; padding: 0; }
    StartDialog #options { height: auto; }
    StartDialog #options Checkbox { border: none; padding: 0; margin-right: 2; }
    StartDialog #sandbox-row { height: 1; }
    StartDialog #sandbox { layout: horizontal; height: 1; width: auto; border: none;
                           padding: 0; }
    StartDialog #sandbox RadioButton { width: auto; margin-right: 2; }
    StartDialog #prompt { margin-top: 0; }
    StartDialog #buttons { height: 1; align-horizontal: right; margin-top: 1; }
    StartDialog #buttons Button { margin-left: 2; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, *, target: str, agents: list[tuple[str, str, bool]], default: str,
                 backends: list[tuple[str, str]], backend: str, for_task: bool = True) -> None:
        """agents: (spec, description, installed); backends: (name, description);
        ``for_task``: autonomous is offered only for a task (a scratch session has none)."""
        super().__init__()
        self.target = target
        self.agents = agents
        self.default = default
        self.backends = backends
        self.backend = backend
        self.for_task = for_task

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
            with Horizontal(id="options"):
                yield Tick("yolo: no permission prompts", id="yolo", compact=True)
                if self.for_task:
                    yield Tick("autonomous: on its own", id="autonomous",
                               compact=True)
            with Horizontal(id="sandbox-row"):
                yield Label("sandbox: ")
                with RadioSet(id="sandbox"):
                    for value, label in SANDBOX_CHOICES:
                        yield Radio(label, value=value is None, id=f"sandbox-{label}")
            yield Input(id="prompt", compact=True,
                        placeholder="first prompt (optional)")
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
        if event.radio_set.id == "backend":
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

    def on_input_submitted(self, event: Input.Submitted) -> None:
        opt = self.query_one(OptionList).highlighted_option
        self._start(opt.id if opt else None)

    def _start(self, agent: str | None) -> None:
        if agent:
            auto = self.query("#autonomous").results(Checkbox)
            self.dismiss(StartChoice(
                agent=agent, backend=self.backend, yolo=self.query_one("#yolo", Checkbox).value,
                autonomous=any(c.value for c in auto),
                prompt=self.query_one("#prompt", Input).value.strip(),
                sandbox=self._sandbox()))

    def _sandbox(self) -> bool | None:
        pressed = self.query_one("#sandbox", RadioSet).pressed_index
        return SANDBOX_CHOICES[pressed][0] if pressed >= 0 else None

    def action_cancel(self) -> None:
        self.dismiss(None)
