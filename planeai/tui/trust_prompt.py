"""Asking once per repo whether its `.planeai/` hooks and provider files may be used.

A mixin of the App: it runs a thread worker (reading the repo) and pushes the TrustDialog,
both of which need the App itself. Until trusted, a repo's files are not used at all.
"""

from __future__ import annotations

from textual import work
from textual.message import Message


class TrustNeeded(Message):
    """A repo's `.planeai/` holds files nobody trusted (``changed``: since they were)."""

    def __init__(self, content, changed: bool) -> None:
        super().__init__()
        self.content = content
        self.changed = changed


class TrustPromptMixin:
    def _init_trust(self) -> None:
        self._trust_asked: set[str] = set()      # repo paths whose .planeai/ was checked

    def check_trust(self, path: str) -> None:
        """Once per repo and run: if its .planeai/ holds hooks or provider files nobody
        trusted, show what they would run and ask. Returns None; the answer comes later."""
        from planeai.services.trust import resolve_root

        path = resolve_root(path)
        if path in self._trust_asked:
            return
        self._trust_asked.add(path)
        self._read_trust(path)

    @work(thread=True, group="trust", exit_on_error=False)
    def _read_trust(self, path: str) -> None:
        from planeai.services import trust

        content = trust.read_content(path)
        st = trust.state(content)
        if st in (trust.UNTRUSTED, trust.CHANGED):
            self.post_message(TrustNeeded(content, st == trust.CHANGED))

    def on_trust_needed(self, message: TrustNeeded) -> None:
        from planeai.tui.trust_dialog import TrustDialog

        content = message.content

        def answer(yes: bool | None) -> None:
            if yes:
                self._service("trust", lambda: self._trust(content))
            else:
                self.notify(f"{content.root}/.planeai is not used (planeai trust "
                            f"{content.root} trusts it later)", markup=False)

        self.push_screen(TrustDialog(content, message.changed), answer)

    def _trust(self, content) -> None:
        from planeai.services import trust

        trust.trust(content)  # exactly what the dialog showed
        self.manager.config.readmit()
        self.manager.forget_registries()
        self.notify(f"trusted {content.root}/.planeai: its {content.what} are used now",
                    markup=False)  # notify is thread-safe
