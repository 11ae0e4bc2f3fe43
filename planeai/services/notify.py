"""Tell the person when something needs them: desktop notification, else the terminal bell.

The app also shows a toast for the same events (it reads the event log itself).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from planeai.config import NotifySettings
from planeai.core.events import notification_for
from planeai.core.models import Event

TITLES = {
    "needs_input": "{task} needs input",
    "completed": "{task} finished",
    "failed": "{task} failed",
    "stale": "{task} looks stuck",
    "over_budget": "{task}: over budget, no new work starts",
    "idle": "{task} is idle",
    "busy": "{task} is working",
}


def message(name: str, e: Event) -> str:
    who = e.task_key or (e.data.get("name") if e.data else None) or "a session"
    text = TITLES.get(name, name).format(task=who)
    if name in ("failed", "over_budget") and e.data.get("reason"):
        text += f": {e.data['reason']}"
    return text


def desktop_available() -> bool:
    """notify-send is installed and a desktop session is there to show it."""
    return bool(shutil.which("notify-send") and (
        os.environ.get("DBUS_SESSION_BUS_ADDRESS") or os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")))


def send_desktop(text: str) -> bool:
    """One desktop notification (argv only: the text is one argument); True when shown."""
    try:
        r = subprocess.run(["notify-send", "--app-name=planeai", "planeai", "--", text],
                           timeout=5, capture_output=True, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


class Notifier:
    def __init__(self, settings: NotifySettings, *, out=None) -> None:
        self.events = settings.events
        self.desktop = settings.desktop
        self.bell = settings.bell
        self.out = out

    def desktop_available(self) -> bool:
        return desktop_available()

    def handle(self, e: Event) -> str | None:
        """Notify for one event; returns the text when it notified."""
        name = notification_for(e)
        if name is None or name not in self.events:
            return None
        text = message(name, e)
        shown = False
        if self.desktop and self.desktop_available():
            shown = send_desktop(text)
        out = self.out or sys.stdout
        if not shown and self.bell and out.isatty():
            out.write("\a")
        out.write(f"planeai: {text}\n")
        out.flush()
        return text
