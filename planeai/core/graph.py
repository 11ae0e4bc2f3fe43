"""Task graph rules: blockers must not form a cycle, a task must not be its own ancestor.

Pure functions over lookups the caller supplies (the store passes queries, tests pass dicts),
so the rules are written once and hold wherever tasks are linked. No I/O here.
"""

from __future__ import annotations

from typing import Callable, Iterable

from planeai.core.errors import ValidationError


def blocked_by_path(start: str, goal: str,
                    blockers_of: Callable[[str], Iterable[str]]) -> list[str] | None:
    """A blocked-by path ``start -> ... -> goal`` (breadth first), or None when there is none."""
    prev: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        cur = queue.pop(0)
        if cur == goal:
            path: list[str] = []
            node: str | None = cur
            while node is not None:
                path.append(node)
                node = prev[node]
            return list(reversed(path))
        for nxt in blockers_of(cur):
            if nxt not in prev:
                prev[nxt] = cur
                queue.append(nxt)
    return None


def check_blocker(key: str, blocker: str,
                  blockers_of: Callable[[str], Iterable[str]]) -> None:
    """Raise ValidationError if ``key`` blocked by ``blocker`` would block itself or close
    a cycle; returns None when the link is allowed."""
    if blocker == key:
        raise ValidationError(f"{key} cannot block itself")
    cycle = blocked_by_path(blocker, key, blockers_of)
    if cycle:
        raise ValidationError(
            f"{key} blocked by {blocker} would make a cycle: "
            f"{' -> '.join([key] + cycle)} (read: blocked by)")


def check_parent(key: str, parent: str, parent_of: Callable[[str], str | None]) -> None:
    """Raise ValidationError if ``parent`` as the parent of ``key`` would make ``key`` its
    own ancestor; returns None when the link is allowed."""
    chain = [key]
    cur: str | None = parent
    seen: set[str] = set()
    while cur is not None and cur not in seen:
        seen.add(cur)
        chain.append(cur)
        if cur == key:
            raise ValidationError(
                f"{parent} cannot be the parent of {key}: it would be its own "
                f"ancestor ({' -> '.join(reversed(chain))})")
        cur = parent_of(cur)
