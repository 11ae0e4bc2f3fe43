"""The small dialogs of delivery: the commit message (the task's, editable) and how to merge.

``CommitDialog`` returns the message, or None when cancelled or blank; ``MergeDialog`` a
``MergeChoice`` (merge / squash / rebase, and whether to commit uncommitted work first), or
None."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Label, OptionList, TextArea
from textual.widgets.option_list import Option

WAYS = (("merge", "a merge commit, the branch's commits kept"),
        ("squash", "one commit with all of the changes"),
        ("rebase", "the commits replayed on the base"))


class CommitDialog(ModalScreen[str | None]):
    DEFAULT_CSS = """
    CommitDialog { align: center middle; }
    CommitDialog > Vertical {
        width: 80; max-width: 100%; height: auto;
        border: round $accent; background: $surface; padding: 0 1;
    }
    CommitDialog Label { width: 100%; }
    CommitDialog TextArea { height: 8; }
    CommitDialog #buttons { height: 1; align-horizontal: right; margin-top: 1; }
    CommitDialog #buttons Button { margin-left: 2; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "commit", "Commit")]

    def __init__(self, key: str, message: str) -> None:
        super().__init__()
        self.key = key
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Commit every change of {self.key}'s worktree, untracked files too "
                        "(ctrl+s commits)", markup=False)
            yield TextArea(self.message, id="message", soft_wrap=True)
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Commit", id="commit", variant="primary", compact=True)

    def on_mount(self) -> None:
        area = self.query_one(TextArea)
        area.cursor_location = (0, len(self.message.partition("\n")[0]))  # end of the subject
        area.focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "commit":
            self.action_commit()
        else:
            self.dismiss(None)

    def action_commit(self) -> None:
        text = self.query_one(TextArea).text
        self.dismiss(text if text.strip() else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class MergeChoice:
    how: str                 # merge | squash | rebase
    commit_first: bool


class MergeDialog(ModalScreen[MergeChoice | None]):
    DEFAULT_CSS = """
    MergeDialog { align: center middle; }
    MergeDialog > Vertical {
        width: 76; max-width: 100%; height: auto;
        border: round $accent; background: $surface; padding: 0 1;
    }
    MergeDialog Label { width: 100%; }
    MergeDialog OptionList { height: auto; }
    MergeDialog Checkbox { margin-top: 1; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, key: str, default: str) -> None:
        super().__init__()
        self.key = key
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Merge {self.key} into its base (enter merges; the task is done, "
                        "its worktree goes)", markup=False)
            yield OptionList(*[Option(f"{way:<7} {desc}" + ("  (default)" if way ==
                                                            self.default else ""), id=way)
                               for way, desc in WAYS], id="ways")
            yield Checkbox("commit uncommitted changes first (what the diff shows)",
                           value=True, id="commit-first", compact=True)

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        ways = [w for w, _ in WAYS]
        ol.highlighted = ways.index(self.default) if self.default in ways else 0
        ol.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(MergeChoice(event.option.id or "merge",
                                 self.query_one(Checkbox).value))

    def action_cancel(self) -> None:
        self.dismiss(None)
