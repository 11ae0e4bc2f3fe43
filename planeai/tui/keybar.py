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

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        if hasattr(type(self.app), "dispatching"):  # the app's reactive: redraw on a toggle
            self.watch(self.app, "dispatching", lambda _on: self.refresh(), init=False)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen) -> None:
        if self.is_attached and screen is self.screen:
            self.refresh()

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        spans = []
        seen: set[str] = set()
        if getattr(self.app, "dispatching", False):
            # first: at 80 columns the key hints run off the end, this must not
            text.append(" ⚙ auto-dispatch on ", style="bold green")
        hints = []
        for node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            if not binding.show or not enabled or binding.action in seen:
                continue
            seen.add(binding.action)
            hints.append((f" {self.app.get_key_display(binding)} ", f"{binding.description} ",
                          binding.action, node))
        # too narrow: the least important hints go (the last ones but help and quit), so
        # what is shown is whole and ? and q stay reachable by eye
        width = self.size.width or 10_000
        used = text.cell_len + sum(len(k) + len(d) for k, d, _, _ in hints)
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
