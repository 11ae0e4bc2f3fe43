"""What the control client raises: all are BackendErrors, so callers catch one type."""

from __future__ import annotations

from planeai.errors import BackendError


class TmuxCommandError(BackendError):
    """tmux answered a command with %error; the message is tmux's text."""

    def __init__(self, message: str, command: list[str] | None = None) -> None:
        super().__init__(message)
        self.command = command


class TmuxControlClosed(BackendError):
    """The control client is not running (never started, closed, or the server went away)."""


class TmuxTimeout(BackendError):
    """tmux did not answer a command in time."""
