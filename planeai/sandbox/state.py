"""Each provider's own state in the sandbox: a directory on the host that is its HOME inside.

Why a host directory per provider rather than the user's home or a named volume: the agent
keeps its login, settings and folder trust across sessions (one login serves every sandbox of
that provider), nothing else of the home is reachable (SSH keys, other tools' tokens, shell
history), and planeai can read the agent's own usage records there for metrics, which a
volume would hide. It is seeded once from a copied-in subset of the user's own state (the
provider's ``sandbox_state`` list, e.g. ``.claude.json``), never linked, so an agent in a
container cannot change the user's own files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from planeai.errors import PlaneaiError

SEEDED = ".planeai-seeded"


def state_dir(root: Path, provider: str) -> Path:
    return root / "state" / provider


def ensure_state(root: Path, provider: str, home: str | None, subset: tuple[str, ...]) -> Path:
    """The provider's state dir, created (0700) and seeded from ``home`` the first time."""
    d = state_dir(root, provider)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    marker = d / SEEDED
    if marker.exists():
        return d
    if home:
        for rel in subset:
            _copy_in(Path(home), d, rel)
    marker.write_text("seeded from the user's own state; edit freely\n")
    return d


def _copy_in(home: Path, dest: Path, rel: str) -> None:
    rel_path = Path(rel)
    if rel_path.is_absolute() or ".." in rel_path.parts:
        raise PlaneaiError(f"sandbox_state entry {rel!r} must be a path under HOME")
    src = home / rel_path
    if not src.exists() or src.is_symlink():
        return  # a link could point anywhere on the host: only real files are copied
    dst = dest / rel_path
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
    else:
        shutil.copy2(src, dst)
