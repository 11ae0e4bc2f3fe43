"""Find the provider and skill files shipped with planeai.

In a wheel they sit inside the package (``planeai/_bundled/``); in a source checkout or an
editable install they are at the top of the repo.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _bundled(name: str) -> Path:
    inside = _PKG / "_bundled" / name
    if inside.is_dir():
        return inside
    return _PKG.parent / name


def providers_dir() -> Path:
    return _bundled("providers")


def skills_dir() -> Path:
    return _bundled("skills")
