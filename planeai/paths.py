"""Where planeai keeps things.

platformdirs decides the defaults; one ``PLANEAI_HOME`` env var moves everything under one
folder (tests and per-project sandboxes use it). Kept import-light: the CLI's hot path
(``planeai task add``) goes through here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APP = "planeai"


@dataclass(frozen=True)
class Locations:
    config_dir: Path
    data_dir: Path
    state_dir: Path
    runtime_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "planeai.db"

    @property
    def worktrees_dir(self) -> Path:
        return self.data_dir / "worktrees"

    @property
    def user_providers_dir(self) -> Path:
        return self.config_dir / "providers"

    @property
    def user_skills_dir(self) -> Path:
        return self.config_dir / "skills"


def locations(env: dict[str, str] | os._Environ[str] | None = None) -> Locations:
    env = os.environ if env is None else env
    home = env.get("PLANEAI_HOME")
    if home:
        root = Path(home).expanduser().absolute()
        return Locations(root / "config", root / "data", root / "state", root / "run")
    import platformdirs  # only when no PLANEAI_HOME: saves a few ms on the hot path

    import warnings

    dirs = platformdirs.PlatformDirs(APP, appauthor=False)
    with warnings.catch_warnings():
        # no XDG_RUNTIME_DIR (ssh, containers): platformdirs falls back to /tmp/runtime-UID
        # and warns on every call; the fallback is fine (we create it 0700)
        warnings.simplefilter("ignore")
        runtime = Path(dirs.user_runtime_dir)
    return Locations(
        Path(dirs.user_config_dir),
        Path(dirs.user_data_dir),
        Path(dirs.user_state_dir),
        runtime,
    )


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 for the last component."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path
