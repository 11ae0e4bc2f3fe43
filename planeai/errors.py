"""Every error planeai raises on purpose is a PlaneaiError (defined in planeai.core.errors,
so the pure core can raise them; re-exported here for everyone else)."""

from planeai.core.errors import (  # noqa: F401
    BackendError,
    ConfigError,
    ConflictError,
    GitError,
    NotFoundError,
    PlaneaiError,
    ProviderError,
    ValidationError,
    WorktreeError,
)
