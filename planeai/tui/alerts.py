"""Telling the person when an agent starts needing input: a toast that names it (``w``
jumps there), a desktop notification when a desktop session is there (``desktop``; sent off
the event loop, planeai.services.notify) and the terminal bell, once per transition, as
``[notify]`` says (``events`` lists needs_input; ``bell``).

A mixin of the App: ``_note_statuses`` before a change is applied, ``_alert_changes`` after.
"""

from __future__ import annotations

import threading
from typing import Iterable

from textual.markup import escape

from planeai.core.models import Session
from planeai.tui.model import agent_status


class AlertsMixin:
    def _note_statuses(self, sessions: Iterable[Session]) -> dict[str, str]:
        """The agent status shown now of each of these sessions (by id) the board has."""
        shown = self.data.session_by_id
        return {s.id: agent_status(shown[s.id]) for s in sessions if s.id in shown}

    def _alert_changes(self, before: dict[str, str], sessions: Iterable[Session],
                       asking: list[str] | None = None) -> None:
        """Alert for each session that started needing input: those ``asking`` (from the
        events) when given, else those that need input now and did not ``before``."""
        settings = self.manager.config.notify
        if "needs_input" not in settings.events:
            return
        if asking is not None:
            shown = {s.id: s for s in sessions}
            fresh = [shown[sid] for sid in asking if sid in shown]
        else:
            fresh = [s for s in sessions if agent_status(s) == "needs_input"
                     and before.get(s.id) != "needs_input"]
        if not fresh:
            return
        self.alerts += len(fresh)
        names = ", ".join(s.task_key or s.name for s in fresh[:3])
        more = f" and {len(fresh) - 3} more" if len(fresh) > 3 else ""
        text = f"{names}{more} needs input"
        self.notify(escape(f"{text} (w jumps there)"), severity="warning", timeout=8)
        if settings.desktop:
            from planeai.services import notify

            if notify.desktop_available():
                self.desktop_sent.append(text)
                threading.Thread(target=notify.send_desktop, args=(text,), daemon=True,
                                 name="desktop-notify").start()
        if settings.bell:
            self.bell()
