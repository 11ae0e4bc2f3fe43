"""Names: a task's branch (``planeai/<key>-<slug>``) and the checks that keep branch and
worktree names safe to hand to git and to use as directory names."""

from __future__ import annotations

import re
import unicodedata

from planeai.errors import WorktreeError

BRANCH_PREFIX = "planeai/"


def slugify(title: str, max_len: int = 40) -> str:
    """ASCII, lowercase, dash-separated; cut at a dash when possible; '' if nothing is left."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if len(slug) > max_len:
        cut = slug[:max_len]
        if slug[max_len] != "-" and "-" in cut[max_len // 2:]:
            cut = cut[:cut.rindex("-")]
        slug = cut.strip("-")
    return slug


_TASK_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def branch_for(task_key: str, title: str) -> str:
    """``planeai/PLA-1-short-slug`` (or ``planeai/PLA-1`` if the title has no usable letters)."""
    if not _TASK_KEY.fullmatch(task_key or ""):
        raise WorktreeError(f"task key {task_key!r} must be letters, digits, '-' or '_' "
                            "and start with a letter or digit")
    slug = slugify(title)
    name = f"{BRANCH_PREFIX}{task_key}-{slug}" if slug else f"{BRANCH_PREFIX}{task_key}"
    validate_branch_name(name)
    return name


def validate_branch_name(name: str) -> None:
    """Raise WorktreeError naming the broken rule of ``git check-ref-format --branch``."""
    def bad(rule: str) -> None:
        raise WorktreeError(f"invalid branch name {name!r}: {rule}")

    if not name:
        bad("it is empty")
    if name.startswith("-"):
        bad("it starts with '-'")
    if name == "HEAD":
        bad("'HEAD' is reserved")
    if name == "@":
        bad("'@' alone is reserved")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        bad("it contains a control character")
    for ch, what in ((" ", "a space"), ("~", "'~'"), ("^", "'^'"), (":", "':'"), ("?", "'?'"),
                     ("*", "'*'"), ("[", "'['"), ("\\", "a backslash")):
        if ch in name:
            bad(f"it contains {what}")
    if ".." in name:
        bad("it contains '..'")
    if "@{" in name:
        bad("it contains '@{'")
    if name.startswith("/") or name.endswith("/"):
        bad("it starts or ends with '/'")
    if "//" in name:
        bad("it contains '//'")
    if name.endswith("."):
        bad("it ends with '.'")
    for comp in name.split("/"):
        if comp.startswith("."):
            bad(f"component {comp!r} starts with '.'")
        if comp.endswith(".lock"):
            bad(f"component {comp!r} ends with '.lock'")


_WT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def validate_worktree_name(name: str) -> None:
    """A worktree directory name: one path component, no leading '.' or '-'."""
    if not _WT_NAME.fullmatch(name or "") or name.endswith(".lock"):
        raise WorktreeError(f"invalid worktree name {name!r}: use letters, digits, '.', '_', '-' "
                            "and start with a letter or digit")
