"""Every error planeai raises on purpose is a PlaneaiError.

Front ends print ``str(err)`` as one line and exit 1; anything else is a bug. Kept in core so
the pure layer can raise them; ``planeai.errors`` re-exports these same classes.
"""


class PlaneaiError(Exception):
    """Base of all expected failures: bad input, missing tools, conflicts."""


class ConfigError(PlaneaiError):
    """A config file or value is malformed."""


class NotFoundError(PlaneaiError):
    """A project, task or session that was named does not exist."""


class ValidationError(PlaneaiError):
    """Input that breaks a rule: empty title, cycle, unknown status..."""


class ConflictError(PlaneaiError):
    """The thing already exists or is in a state that forbids the change."""


class GitError(PlaneaiError):
    """git refused or failed."""


class WorktreeError(GitError):
    """A worktree could not be created, reused or removed safely."""


class BackendError(PlaneaiError):
    """A session backend (local PTY, tmux, daemon) failed."""


class ProviderError(PlaneaiError):
    """A provider definition is invalid or its CLI cannot be started."""
