"""The diff view (D): a task's worktree against its base, its last check, and delivery keys.

Left the changed files with their status and +/-, right the unified diff (committed,
uncommitted and untracked changes alike) coloured like ``git diff``; below, the last check's
verdict with the tail of its output. Highlighting a file scrolls the diff to it. ``c`` commit,
``k`` checks, ``M`` merge, ``P`` pull request, ``r`` reload, escape back (actions.py).

Everything is computed in a worker thread (planeai.services.review, without the service lock:
it only reads); the patch is drawn on the Line API, so a diff of thousands of files costs a
list of strings, and only the lines on screen become strips.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from planeai.tui.actions import actions_for
from planeai.tui.keybar import KeyBar

MAX_LINES = 200_000       # of the patch shown; the rest is cut with a line that says so
_CONTROL = {c: "?" for c in [*range(0, 9), *range(10, 32), *range(127, 160)]}  # not ours

_HEAD = Style(bold=True)
_HUNK = Style(color="cyan")
_ADD = Style(color="green")
_DEL = Style(color="red")
_NOTE = Style(dim=True, italic=True)


def line_style(line: str) -> Style | None:
    """git diff's colours for one patch line."""
    if line.startswith(("diff --git", "index ", "--- ", "+++ ", "new file mode",
                        "deleted file mode", "similarity index", "rename ", "old mode",
                        "new mode", "Binary files")):
        return _HEAD
    if line.startswith("@@"):
        return _HUNK
    if line.startswith("+"):
        return _ADD
    if line.startswith("-"):
        return _DEL
    if line.startswith("\\"):
        return _NOTE
    return None


def _clean(line: str) -> str:
    return line.expandtabs(4).translate(_CONTROL)


def _path_of_header(line: str) -> str:
    """The new path of a ``diff --git a/X b/Y`` line (best effort: quoted names stay quoted)."""
    rest = line[len("diff --git "):]
    i = rest.rfind(" b/")
    return rest[i + 3:] if i >= 0 else rest


@dataclass
class Review:
    """What the worker loaded for the view."""

    key: str
    session: str              # its name
    agent: str
    branch: str
    base_ref: str
    base: str
    files: list = field(default_factory=list)   # FileChange (planeai.git.review.diff)
    added: int = 0
    deleted: int = 0
    lines: list[str] = field(default_factory=list)
    starts: dict[str, int] = field(default_factory=dict)   # path -> its first patch line
    truncated: int = 0        # lines left out
    check: dict | None = None  # review.last_check


def load_review(store, key: str, session: str | None) -> Review:
    """In a worker thread: the task's worktree diff, its patch and the last check."""
    from planeai.services import review

    t = review.target(store, key, session)
    d = review.diff(store, t.task.key, t.session.id)
    raw = d.patch().splitlines()
    lines = [_clean(ln) for ln in raw[:MAX_LINES]]
    starts = {}
    for i, ln in enumerate(lines):
        if ln.startswith("diff --git "):
            starts.setdefault(_path_of_header(ln), i)
    return Review(t.task.key, t.session.name, t.session.agent, t.branch, d.base_ref, d.base,
                  d.files, d.added, d.deleted, lines, starts, max(0, len(raw) - MAX_LINES),
                  review.last_check(store, t.task.key, t.session.id))


class PatchView(ScrollView, can_focus=True):
    """The unified diff, one line per row, coloured by its first character."""

    DEFAULT_CSS = """
    PatchView { width: 1fr; height: 1fr; scrollbar-size-vertical: 1; }
    """

    BINDINGS = [
        Binding("up,k", "scroll_up", show=False),
        Binding("down,j", "scroll_down", show=False),
        Binding("pageup", "page_up", show=False),
        Binding("pagedown,space", "page_down", show=False),
        Binding("home", "scroll_home", show=False),
        Binding("end", "scroll_end", show=False),
        Binding("left", "scroll_left", show=False),
        Binding("right", "scroll_right", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: list[str] = []

    def set_lines(self, lines: list[str]) -> None:
        self.lines = lines
        width = max((len(ln) for ln in lines[:20_000]), default=0)
        self.virtual_size = Size(width, len(lines))
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    def show_line(self, index: int) -> None:
        self.scroll_to(0, index, animate=False)

    def render_line(self, y: int) -> Strip:
        index = y + self.scroll_offset.y
        width = self.size.width
        if not 0 <= index < len(self.lines):
            return Strip.blank(width, self.rich_style)
        line = self.lines[index]
        x = self.scroll_offset.x
        strip = Strip([Segment(line, line_style(line))]).crop_extend(x, x + width, None)
        return strip.apply_style(self.rich_style)


def check_text(check: dict | None) -> Text:
    """The last check's verdict and, when it failed, the tail of the failing output."""
    if check is None:
        return Text.assemble(("checks ", "bold"), ("none run yet; k runs [review] checks",
                                                   "dim"))
    results = check.get("results") or []
    at = str(check.get("at", ""))[:19].replace("T", " ")
    if check.get("passed"):
        return Text.assemble(("checks ", "bold"), ("✓ passed", "bold green"),
                             f"  {len(results)} command(s), {at} UTC", style="")
    text = Text.assemble(("checks ", "bold"), ("✗ failed", "bold red"), f"  {at} UTC")
    for r in results:
        if r.get("passed"):
            continue
        verdict = "timed out" if r.get("timed_out") else f"exit {r.get('exit_code')}"
        text.append(f"\n{r.get('command')}  ({verdict})", style="red")
        for ln in str(r.get("output", "")).rstrip().splitlines()[-6:]:
            text.append("\n  " + _clean(ln), style="dim")
        break
    return text


class DiffScreen(Screen[None]):
    WHERE = "diff"

    DEFAULT_CSS = """
    DiffScreen #diff-title { height: 1; background: $boost; padding: 0 1; }
    DiffScreen #files { width: 40%; max-width: 60; height: 1fr; border: none;
                        border-right: vkey $primary-darken-2; }
    DiffScreen #check { height: auto; max-height: 9; padding: 0 1;
                        border-top: hkey $primary-darken-2; }
    """

    BINDINGS = [Binding(a.key, a.action, a.label, show=a.footer, key_display=a.display)
                for a in actions_for("diff")]

    def __init__(self, key: str, session: str | None = None) -> None:
        """``session``: a session's name or id (None: the task's newest with a worktree)."""
        super().__init__()
        self.key = key
        self.session = session
        self.review: Review | None = None
        self.loads = 0            # reviews shown (tests wait on it)
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text(f"{self.key}  loading the diff…"), id="diff-title")
        with Vertical():
            with Horizontal():
                yield OptionList(id="files")
                yield PatchView(id="patch")
            yield Static(id="check")
        yield KeyBar(id="diff-keys")

    def on_mount(self) -> None:
        self.action_reload()

    # ------------------------------------------------------------------ loading
    def action_reload(self) -> None:
        store = self.app.manager.store
        key, session = self.key, (self.review.session if self.review else self.session)
        self.app._service(f"diff {key}", lambda: load_review(store, key, session),
                          self._loaded, refused=self._failed, lock=False)

    def _failed(self, why: str) -> None:
        if not self.is_attached:
            return
        self.error = why
        self.query_one("#diff-title", Static).update(
            Text.assemble((self.key, "bold"), "  ", (why, "red")))
        self.query_one("#check", Static).update(Text("nothing to show", style="dim"))
        self.loads += 1

    def _loaded(self, r: Review) -> None:
        if not self.is_attached:
            return
        self.review, self.error = r, None
        # the numbers first: at 80 columns the branch name is what gets cut
        title = Text.assemble((r.key, "bold"), "  ", (r.session, "bold"), f" ({r.agent})  ",
                              no_wrap=True, overflow="ellipsis")
        if r.files:
            title.append(f"{len(r.files)} file{'s' if len(r.files) != 1 else ''} ")
            title.append(f"+{r.added}", "green")
            title.append(" ")
            title.append(f"-{r.deleted}", "red")
        else:
            title.append("no changes", "dim")
        title.append("  ")
        title.append(r.branch, "cyan")
        title.append(f" vs {r.base_ref} ({r.base[:10]})")
        self.query_one("#diff-title", Static).update(title)
        files = self.query_one("#files", OptionList)
        keep = files.highlighted
        files.clear_options()
        files.add_options([Option(self._file_label(f), id=f.path) for f in r.files])
        lines = r.lines if r.files else ["(no changes against the base)"]
        if r.truncated:
            lines = [*lines, f"[{r.truncated} more lines not shown: `planeai diff {r.key}`]"]
        self.query_one("#patch", PatchView).set_lines(lines)
        if r.files:
            files.highlighted = keep if keep is not None and keep < len(r.files) else 0
            if self.loads == 0:
                files.focus()
        self.query_one("#check", Static).update(check_text(r.check))
        self.loads += 1

    @staticmethod
    def _file_label(f) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f"{f.status} ", style="bold")
        t.append(f.path)
        if f.binary:
            t.append("  binary", style="dim")
        else:
            t.append("  ")
            t.append(f"+{f.added}", style="green")
            t.append(" ")
            t.append(f"-{f.deleted}", style="red")
        return t

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if self.review is None or event.option.id is None:
            return
        start = self.review.starts.get(event.option.id)
        if start is not None:
            self.query_one("#patch", PatchView).show_line(start)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.query_one("#patch", PatchView).focus()

    # ------------------------------------------------------------------ delivery keys
    def _ready(self) -> Review | None:
        if self.review is None:
            self.app.notify(self.error or "the diff is still loading", severity="warning")
        return self.review

    def _changed(self, *_args) -> None:
        self.app.refresh_stats()
        if self.is_attached:
            self.action_reload()

    def action_commit(self) -> None:
        r = self._ready()
        if r is not None:
            self.app.review_commit(r.key, r.session, self._changed)

    def action_check(self) -> None:
        r = self._ready()
        if r is not None:
            self.app.review_check(r.key, r.session, self._changed)

    def action_merge(self) -> None:
        r = self._ready()
        if r is None:
            return

        def merged(ok: bool) -> None:
            self.app.refresh_stats()
            if ok and self.is_current:
                self.dismiss(None)  # the worktree is gone: nothing left to show here
            elif self.is_attached:
                self.action_reload()

        self.app.review_merge(r.key, r.session, merged)

    def action_pull_request(self) -> None:
        r = self._ready()
        if r is not None:
            self.app.review_pr(r.key, r.session, self._changed)

    def action_back(self) -> None:
        self.dismiss(None)
