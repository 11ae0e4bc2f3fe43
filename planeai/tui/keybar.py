"""The key hints at the bottom: one line of Rich text.

Textual's ``Footer`` builds a widget per key and restyles them all on every focus change
(measured: ~85 ms of the app's first frame with 11 keys). This draws the same hints as one
``Text``, recomputed only when the screen's bindings change; clicking a key runs it.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.widget import Widget

KEY_STYLE = "bold #ffa62b"
KEEP = ("help", "quit")  # hints never dropped for width
LABEL_LONG = " ⚙ auto-dispatch on "  # shown in front while the app dispatches
LABEL_SHORT = " ⚙ auto "


class KeyBar(Widget):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        background: $footer-background;
        color: $footer-foreground;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._spans: list[tuple[int, int, str, object]] = []
        self._drawn: list | None = None  # the hints last drawn

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        if hasattr(type(self.app), "dispatching"):  # the app's reactive: redraw on a toggle
            self.watch(self.app, "dispatching", lambda _on: self.refresh(), init=False)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen) -> None:
        # the screen's bindings are refreshed after many messages (a board change among
        # them); most leave the hints as they were: then no redraw
        if self.is_attached and screen is self.screen and self._hints() != self._drawn:
            self.refresh()

    def _hints(self) -> list[tuple[str, str, str, object]]:
        hints = []
        seen: set[str] = set()
        for node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            if not binding.show or not enabled or binding.action in seen:
                continue
            seen.add(binding.action)
            hints.append((f" {self.app.get_key_display(binding)} ", f"{binding.description} ",
                          binding.action, node))
        return hints

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        spans = []
        hints = self._hints()
        self._drawn = list(hints)
        # too narrow: the least important hints go (the last ones but help and quit), so
        # what is shown is whole and ? and q stay reachable by eye
        width = self.size.width or 10_000
        used = sum(len(k) + len(d) for k, d, _, _ in hints)
        if getattr(self.app, "dispatching", False):
            # first, so it never runs off the end; the short form when the long one would
            # push key hints out (at 80 columns it would cost two of them)
            label = LABEL_LONG if used + len(LABEL_LONG) <= width else LABEL_SHORT
            text.append(label, style="bold green")
            used += len(label)
        while used > width:
            drop = next((h for h in reversed(hints) if h[2] not in KEEP), None)
            if drop is None:
                break
            hints.remove(drop)
            used -= len(drop[0]) + len(drop[1])
        for key, desc, action, node in hints:
            start = text.cell_len
            text.append(key, style=KEY_STYLE)
            text.append(desc)
            spans.append((start, text.cell_len, action, node))
        self._spans = spans
        return text

    async def on_click(self, event: events.Click) -> None:
        for x0, x1, action, node in self._spans:
            if x0 <= event.x < x1:
                await self.app.run_action(action, node)  # type: ignore[arg-type]
                return
