"""The daemon backend and the daemon itself: one background process per user and
PLANEAI_HOME owns the PTYs, so sessions outlive the app and the CLI without tmux.

``backend`` is the Backend the rest of planeai uses; the daemon is ``server`` (its loop and
client connections), ``requests`` (what each request does) and ``sessions`` (its PTYs), and
``__main__`` starts it; ``client`` talks to it, ``attach`` is the raw terminal client and
``protocol`` is the wire format. This module only says where things live (import-light).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

# AF_UNIX paths are limited to 107 bytes on Linux; keep a margin.
MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class DaemonPaths:
    runtime_dir: Path
    state_dir: Path

    @property
    def socket(self) -> Path:
        p = self.runtime_dir / "daemon.sock"
        if len(os.fsencode(str(p))) <= MAX_SOCKET_PATH:
            return p
        # a deep PLANEAI_HOME: a short private directory stands in, one per runtime dir
        digest = hashlib.sha256(os.fsencode(str(self.runtime_dir))).hexdigest()[:16]
        return Path("/tmp") / f"planeai-{os.getuid()}" / f"{digest}.sock"

    @property
    def lock(self) -> Path:
        return self.runtime_dir / "daemon.lock"

    @property
    def log(self) -> Path:
        return self.state_dir / "daemon.log"


def daemon_paths(locs=None) -> DaemonPaths:
    if locs is None:
        from planeai.paths import locations

        locs = locations()
    return DaemonPaths(Path(locs.runtime_dir), Path(locs.state_dir))


def private_dir(path: Path) -> Path:
    """Create ``path`` mode 0700, refusing one that another user owns or others can enter."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = os.lstat(path)
    if st.st_uid != os.getuid():
        from planeai.errors import BackendError

        raise BackendError(f"{path} belongs to uid {st.st_uid}, not to you; remove it")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path
