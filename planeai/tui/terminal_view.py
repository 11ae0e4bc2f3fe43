"""The live terminal of one session, drawn with Textual's Line API.

Costs (DESIGN.md): Rich ``Text`` in a ``Static`` is ~10x slower than cached ``Strip``s, so:

- one ``Strip`` is cached per screen row and rebuilt only for rows the emulator reports
  dirty (``TerminalScreen.take_dirty``);
- output never repaints directly: the backend's reader thread only flags "something
  changed" and schedules one paint on the event loop, at most ``FPS`` times a second;
  a burst of output costs one conversion of the rows it touched;
- only the attached (visible) session is subscribed; hidden sessions cost nothing here.

A backend that declares ``has_screen`` (the local one) is read straight from its emulator.
Other backends feed a private ``TerminalScreen``: a first screen, then the output after it.
A backend with ``subscribe_screen`` (tmux) hands both over in one ordered stream (the
screen is captured in the stream itself); others get subscribe-then-snapshot, with output
that raced the snapshot dropped and the screen captured again.
"""

from __future__ import annotations

import threading
import time

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from typing import TYPE_CHECKING

from planeai.errors import BackendError, PlaneaiError
from planeai.tui.keys import key_to_bytes

if TYPE_CHECKING:  # the emulator (pyghostty, ~0.14 s to load) is imported when first needed
    from planeai.terminal.screen import CellStyle, TerminalScreen

RELEASE_KEY = "ctrl+right_square_bracket"
FPS = 30
SCREEN_WAIT = 5.0  # seconds attach waits for a session's first screen

_STYLE_CACHE: dict["CellStyle", Style] = {}
_CURSOR_STYLE = Style(reverse=True)


def rich_style(cs: "CellStyle") -> Style:
    st = _STYLE_CACHE.get(cs)
    if st is None:
        st = Style(color=cs.fg, bgcolor=cs.bg, bold=cs.bold or None, dim=cs.dim or None,
                   italic=cs.italic or None, underline=cs.underline or None,
                   reverse=cs.reverse or None, strike=cs.strike or None)
        if len(_STYLE_CACHE) > 4096:
            _STYLE_CACHE.clear()
        _STYLE_CACHE[cs] = st
    return st


def runs_to_strip(runs: list[tuple[str, "CellStyle"]], width: int, base: Style) -> Strip:
    segs = [Segment(text, base + rich_style(cs)) for text, cs in runs]
    return Strip(segs).crop_extend(0, width, base)


class TerminalView(Widget, can_focus=True):
    """Shows one session's screen; typing goes to the session while focused."""

    DEFAULT_CSS = """
    TerminalView {
        width: 1fr;
        height: 1fr;
        background: #000000;
        color: #e5e5e5;
    }
    """

    BINDINGS = [
        Binding(RELEASE_KEY, "release", "Sidebar", key_display="^]"),
        Binding("shift+pageup", "scroll_history(-1)", "Scrollback", show=False),
        Binding("shift+pagedown", "scroll_history(1)", show=False),
    ]

    class Released(Message):
        """The user asked to leave the terminal (back to the sidebar)."""

    class Exited(Message):
        """The attached session's process ended."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    class WriteFailed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._backend = None
        self._name: str | None = None
        self._screen: TerminalScreen | None = None
        self._lock: threading.Lock | None = None
        self._feed_lock = threading.Lock()
        self._dropped = False  # output came before the snapshot was installed
        self._first_screen: threading.Event | None = None  # subscribe_screen's first screen
        self._own_screen = False
        self._unsub = None
        self._strips: dict[int, Strip] = {}
        self._cursor: tuple[int, int] = (0, 0)
        self._cursor_visible = True
        self._app_cursor = False
        self._pending = False
        self._last_paint = 0.0
        # a key was sent: the next output (its echo) is painted at once, not at the frame
        # rate (a paint 20 ms before would hold the echo back by up to 1/FPS)
        self._typed = False
        self._history: list[str] | None = None   # plain lines while scrolled back
        self._scroll = 0                          # lines scrolled up into history
        self.paints = 0                           # paints done (tests, bench)
        self.screens = 0                          # whole screens installed (tests)
        self.rows_converted = 0                   # rows turned into strips

    # ------------------------------------------------------------------ attach
    @property
    def session_name(self) -> str | None:
        return self._name

    def attach(self, backend, name: str) -> None:
        """Show session ``name`` of ``backend``. Raises PlaneaiError when it cannot."""
        screen_of = backend.screen if backend.has_screen else None
        if self._name == name and self._backend is backend:
            # the same session, unless it was restarted (a new process, a new emulator)
            if screen_of is None or screen_of(name)[0] is self._screen:
                return
        self.detach()
        self._strips.clear()
        self._history, self._scroll = None, 0
        if screen_of is not None:
            screen, lock = screen_of(name)
            self._backend, self._name, self._screen, self._lock = backend, name, screen, lock
            self._own_screen = False
            self._unsub = backend.subscribe(name, self._on_output)
        elif getattr(backend, "subscribe_screen", None) is not None:
            self._own_screen = True
            self._backend, self._name = backend, name
            first = threading.Event()
            self._first_screen = first
            try:
                self._unsub = backend.subscribe_screen(name, self._on_screen, self._on_output)
                if not first.wait(SCREEN_WAIT) or self._screen is None:
                    raise BackendError(f"no screen of {name} to show (is it still there?)")
            except BaseException:
                self.detach()
                raise
        else:
            # Subscribe first, then snapshot. The stream and the snapshot come over different
            # channels, so output that arrives before the snapshot is installed may or may
            # not be in it: it is dropped, and if any was, the screen is captured again (a
            # dropped prompt would leave the view blank until the agent next prints).
            self._own_screen = True
            self._backend, self._name = backend, name
            try:
                self._unsub = backend.subscribe(name, self._on_output)
                for attempt in range(5):
                    self._dropped = False
                    screen = self._screen_from(backend.snapshot(name))
                    with self._feed_lock:
                        if not self._dropped or attempt == 4:
                            self._screen, self._lock = screen, threading.Lock()
                            break
            except BaseException:
                # e.g. the session is still being set up: forget it, so the next attach
                # really subscribes instead of taking this half-attached view as done
                self.detach()
                raise
        self._fit_size()
        self._paint(full=True)

    def _on_screen(self, snap) -> None:
        """Backend reader thread, in stream order: the whole screen (the first one, or again
        after the backend lost output; None: it could not be read). Output after it is fed
        on top."""
        if snap is None:
            first = self._first_screen
            if first is not None and not first.is_set():
                first.set()  # attach() finds no screen and says so
            return
        screen = self._screen_from(snap)
        with self._feed_lock:
            if self._first_screen is None:
                return  # detached meanwhile
            self._screen, self._lock = screen, threading.Lock()
            self.screens += 1
            if not self._first_screen.is_set():
                self._first_screen.set()  # attach() paints it
                return
        try:
            self.app._loop.call_soon_threadsafe(self._repaint_all)  # type: ignore[union-attr]
        except (RuntimeError, AttributeError):
            pass

    def _repaint_all(self) -> None:
        self._strips.clear()
        self._fit_size()
        self._paint(full=True)

    def refit(self) -> None:
        """Size the session to this view again (after something else resized it, e.g. a
        full-screen attach) and redraw."""
        self._repaint_all()

    @staticmethod
    def _screen_from(snap):
        from planeai.terminal.screen import TerminalScreen

        screen = TerminalScreen(max(1, snap.cols or 80), max(1, snap.rows or 24), scrollback=2000)
        screen.feed(snap.replay())
        return screen

    def detach(self) -> None:
        if self._unsub is not None:
            try:
                self._unsub()
            except Exception:
                pass
        self._unsub = None
        with self._feed_lock:
            self._first_screen = None
            self._backend = self._name = self._screen = self._lock = None
        self._strips.clear()
        self._history, self._scroll = None, 0
        self.refresh()

    def on_unmount(self) -> None:
        self.detach()

    def _fit_size(self) -> None:
        w, h = self.size.width, self.size.height
        if not (self._backend and self._name) or w < 2 or h < 2:
            return
        with self._lock:  # type: ignore[union-attr]
            same = (self._screen.cols, self._screen.rows) == (w, h)  # type: ignore[union-attr]
            if self._own_screen and not same:
                self._screen.resize(w, h)  # type: ignore[union-attr]
        if same and not self._own_screen:
            return
        try:
            self._backend.resize(self._name, w, h)
        except PlaneaiError:
            pass

    def on_resize(self, event: events.Resize) -> None:
        self._strips.clear()
        self._fit_size()
        self._paint(full=True)

    # ------------------------------------------------------------------ output
    def _on_output(self, name: str, data: bytes) -> None:
        """Backend reader thread: record and schedule one coalesced paint."""
        if self._own_screen and data:
            with self._feed_lock:
                if self._lock is None or self._name != name:
                    self._dropped = True  # before the snapshot landed: attach captures again
                    return
                with self._lock:
                    self._screen.feed(data)  # type: ignore[union-attr]
        if not data:
            self.post_message(self.Exited(name))
        if self._pending and not self._typed:
            return
        self._pending = True
        try:
            self.app._loop.call_soon_threadsafe(self._schedule_paint)  # type: ignore[union-attr]
        except (RuntimeError, AttributeError):
            self._pending = False

    def _schedule_paint(self) -> None:
        delay = self._last_paint + 1.0 / FPS - time.monotonic()
        if self._typed:
            self._typed = False
            self._paint()
            self._draw_now()
        elif delay <= 0:
            self._paint()
        else:
            self.app._loop.call_later(delay, self._paint)  # type: ignore[union-attr]

    def _draw_now(self) -> None:
        """Put the rows just painted on the terminal now, not at the screen's next update
        tick: Textual draws at most 60 times a second on a fixed grid, so an echo that comes
        soon after the last frame waited up to 1/60 s more (the tail of keystroke-to-echo).
        Only when nothing else is pending on the screen (a layout, a full repaint); Textual
        internals, so any mismatch falls back to the usual tick."""
        try:
            app, screen = self.app, self.screen
            if (screen is not app.screen or app._batch_count or screen._layout_required
                    or screen._scroll_required or screen._repaint_required
                    or not self._repaint_regions):
                return
            screen._compositor.update_widgets({self})
            screen._compositor_refresh()
        except Exception:  # noqa: BLE001 - an optimisation only: the tick draws it anyway
            pass

    def _paint(self, full: bool = False) -> None:
        self._pending = False
        screen, lock = self._screen, self._lock
        if screen is None or lock is None or not self.is_mounted:
            return
        self._last_paint = time.monotonic()
        width = self.size.width
        with lock:
            dirty = screen.take_dirty()
            if full:
                dirty = set(range(screen.rows))
            rows = {y: screen.row_runs(y) for y in dirty}
            cursor = screen.cursor
            visible = screen.cursor_visible
            self._app_cursor = screen.application_cursor
            n_rows = screen.rows
        if not rows and cursor == self._cursor and visible == self._cursor_visible:
            return
        self.paints += 1
        self.rows_converted += len(rows)
        base = self.rich_style
        for y, runs in rows.items():
            self._strips[y] = runs_to_strip(runs, width, base)
        for y in [y for y in self._strips if y >= n_rows]:
            del self._strips[y]
        old_cursor = self._cursor
        self._cursor, self._cursor_visible = cursor, visible
        if self._scroll:
            return
        if full:
            self.refresh()
            return
        touched = set(rows) | {old_cursor[1], cursor[1]}
        for y in sorted(touched):
            self.refresh(Region(0, y, width, 1))

    # ------------------------------------------------------------------ draw
    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return container.height

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if self._scroll and self._history is not None:
            lines = self._history
            top = max(0, len(lines) - self.size.height - self._scroll)
            i = top + y
            text = lines[i] if 0 <= i < len(lines) else ""
            base = self.rich_style
            strip = Strip([Segment(text, base)]).crop_extend(0, width, base)
            if y == 0:
                tag = f" scrollback -{self._scroll} (shift+pgdn) "
                strip = Strip([Segment(text[: max(0, width - len(tag))], base),
                               Segment(tag, base + Style(reverse=True))])
                strip = strip.crop_extend(0, width, base)
            return strip
        strip = self._strips.get(y)
        if strip is None:
            strip = Strip.blank(width, self.rich_style)
        cx, cy = self._cursor
        if y == cy and self._cursor_visible and self._screen is not None and 0 <= cx < width:
            before, cell, after = strip.crop(0, cx), strip.crop(cx, cx + 1), strip.crop(cx + 1)
            if not cell.cell_length:
                cell = Strip([Segment(" ", self.rich_style)])
            strip = Strip.join([before, cell.apply_style(_CURSOR_STYLE), after])
        return strip

    # ------------------------------------------------------------------ input
    def _write(self, data: bytes) -> None:
        if self._backend is None or self._name is None:
            return
        if self._scroll:
            self._scroll, self._history = 0, None
            self.refresh()
        self._typed = True  # before the write: its echo can come back at once
        try:
            self._backend.write(self._name, data)
        except PlaneaiError as e:
            self._typed = False
            self.post_message(self.WriteFailed(str(e)))

    async def on_key(self, event: events.Key) -> None:
        if event.key == RELEASE_KEY:
            return  # the binding handles it
        if event.key in ("shift+pageup", "shift+pagedown"):
            event.stop()
            self.action_scroll_history(-1 if event.key == "shift+pageup" else 1)
            return
        data = key_to_bytes(event.key, event.character, app_cursor=self._app_cursor)
        event.stop()
        event.prevent_default()
        if data:
            self._write(data)

    def on_paste(self, event: events.Paste) -> None:
        event.stop()
        if self._backend is None or self._name is None:
            return
        try:
            self._backend.paste(self._name, event.text)
        except PlaneaiError as e:
            self.post_message(self.WriteFailed(str(e)))

    def on_click(self, event: events.Click) -> None:
        self.focus()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.action_scroll_history(-0.25)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.action_scroll_history(0.25)

    def action_release(self) -> None:
        self.post_message(self.Released())

    def action_scroll_history(self, pages: float) -> None:
        if self._screen is None or self._lock is None:
            return
        if self._history is None:
            with self._lock:
                self._history = self._screen.scrollback() + self._screen.text_lines()
        step = max(1, int(abs(pages) * self.size.height))
        limit = max(0, len(self._history) - self.size.height)
        self._scroll = max(0, min(limit, self._scroll + (step if pages < 0 else -step)))
        if not self._scroll:
            self._history = None
        self.refresh()

    def screen_text(self) -> str:
        """The visible text (tests)."""
        if self._screen is None or self._lock is None:
            return ""
        with self._lock:
            return self._screen.text()
