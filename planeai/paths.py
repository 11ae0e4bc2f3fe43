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
    """Create ``path`` (and parents) with mode 0700 for the last component; an existing one
    of ours that others can read is made 0700 too (one of another user's is left alone)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = os.stat(path)
    if st.st_uid == os.getuid() and st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def secure_dirs(locs: Locations) -> None:
    """The data (database, worktrees), state and runtime dirs: 0700, created or fixed.

    Called whenever the store is opened; a few syscalls. An OSError becomes one line at the
    front end (``os_error_line``).
    """
    for d in (locs.data_dir, locs.worktrees_dir, locs.state_dir, locs.runtime_dir):
        ensure_private_dir(d)


_ERRNO_HINTS = {
    "ENOSPC": "no space left on the device; free some space and run the command again",
    "EDQUOT": "disk quota exceeded; free some space and run the command again",
    "EROFS": "the file system is read-only",
    "EACCES": "permission denied",
    "EPERM": "operation not permitted",
}


def os_error_line(e: OSError) -> str:
    """One line for an I/O failure: the file, what happened, what to do."""
    import errno

    name = errno.errorcode.get(e.errno or 0, "")
    what = _ERRNO_HINTS.get(name) or (e.strerror or str(e))
    where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
    if name in ("EROFS", "EACCES", "EPERM"):
        what += ("; planeai keeps its data there: set PLANEAI_HOME to a directory you can "
                 "write" if _ours(e.filename) else "; check its permissions")
    return f"{where}: {what}" if where else what


def _ours(filename) -> bool:
    """Is ``filename`` one of planeai's dirs, inside one, or a parent it had to create?"""
    if filename is None:
        return False
    try:
        f = Path(os.fsdecode(filename)).absolute()
        locs = locations()
    except (OSError, ValueError):
        return False
    return any(f == d or d in f.parents or f in d.parents
               for d in (locs.data_dir, locs.state_dir, locs.runtime_dir, locs.config_dir))
