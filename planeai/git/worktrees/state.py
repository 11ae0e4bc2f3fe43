"""Inspecting a worktree: uncommitted, untracked and unpushed work, nested repos, and git-ignored
files whose content the main worktree lacks (what a removal would lose). Changes nothing."""

from __future__ import annotations

import filecmp
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from planeai.git.safe_git import default_branch, git, repo_root
from planeai.git.worktrees.registry import _ref_oid


@dataclass
class WorktreeState:
    uncommitted: list[str]
    untracked: list[str]
    unpushed: int
    branch: str            # "" when detached
    head: str = ""

    @property
    def clean(self) -> bool:
        return not self.uncommitted and not self.untracked and self.unpushed == 0


def worktree_state(path: Path | str, base: str | None = None) -> WorktreeState:
    """Uncommitted and untracked paths and the number of commits not yet anywhere safe.

    ``unpushed``: commits on HEAD not reachable from its upstream; with no upstream, from any
    remote-tracking branch; with no remote-tracking branches at all, not merged into ``base``
    (default branch if None).  Submodules count only when their commit changed.
    """
    path = Path(path)
    out = git(path, "status", "--porcelain=v2", "-z", "--branch", "--untracked-files=all",
              "--ignore-submodules=dirty").stdout
    uncommitted: list[str] = []
    untracked: list[str] = []
    branch = head = ""
    upstream = None
    ahead: int | None = None
    fields = out.split("\0")
    i = 0
    while i < len(fields):
        f = fields[i]
        i += 1
        if not f:
            continue
        if f.startswith("# branch.oid "):
            oid = f[len("# branch.oid "):]
            head = "" if oid == "(initial)" else oid
        elif f.startswith("# branch.head "):
            b = f[len("# branch.head "):]
            branch = "" if b == "(detached)" else b
        elif f.startswith("# branch.upstream "):
            upstream = f[len("# branch.upstream "):]
        elif f.startswith("# branch.ab "):
            ahead = int(f.split()[2].lstrip("+"))
        elif f.startswith("1 "):
            uncommitted.append(f.split(" ", 8)[8])
        elif f.startswith("2 "):
            uncommitted.append(f.split(" ", 9)[9])
            i += 1  # original path follows
        elif f.startswith("u "):
            uncommitted.append(f.split(" ", 10)[10])
        elif f.startswith("? "):
            untracked.append(f[2:])
    unpushed = 0
    if head:
        if upstream is not None and ahead is not None:
            unpushed = ahead
        else:
            has_remote = git(path, "for-each-ref", "--count=1", "--format=x",
                             "refs/remotes").stdout.strip()
            if has_remote:
                not_ = ["--not", "--remotes"]
            else:
                b = base or default_branch(path)
                not_ = ["--not", b] if _ref_oid(path, b) else []
            unpushed = int(git(path, "rev-list", "--count", "HEAD", *not_).stdout.strip() or 0)
    return WorktreeState(uncommitted=uncommitted, untracked=untracked, unpushed=unpushed,
                         branch=branch, head=head)


def _ignored_entries(path: Path) -> list[str]:
    out = git(path, "ls-files", "-z", "--others", "--ignored", "--exclude-standard",
              "--directory").stdout
    return [p for p in out.split("\0") if p]


def _human(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if size >= 1024:
            size, unit = size / 1024, bigger
    return f"{size:.1f} {unit}"


def _same_file(p: str, m: str, st: os.stat_result) -> bool:
    """``m`` (the main worktree's entry at the same path) holds what ``p`` holds."""
    try:
        if stat.S_ISLNK(st.st_mode):
            return os.path.islink(m) and os.readlink(m) == os.readlink(p)
        mt = os.lstat(m)
        if not stat.S_ISREG(mt.st_mode) or mt.st_size != st.st_size:
            return False
        # copy_ignored copies with copy2 (same mtime): trust size + mtime, like git does
        return mt.st_mtime_ns == st.st_mtime_ns or filecmp.cmp(p, m, shallow=False)
    except OSError:
        return False


def _unique_content(p: str, m: str) -> tuple[int, int]:
    """(files, bytes) under ``p`` that the main worktree's ``m`` lacks or holds otherwise."""
    files = size = 0
    try:
        st = os.lstat(p)
    except OSError:
        return 0, 0
    if not stat.S_ISDIR(st.st_mode):
        if (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)) and not _same_file(p, m, st):
            return 1, st.st_size
        return 0, 0
    stack = [(p, m)]
    while stack:
        a, b = stack.pop()
        try:
            it = os.scandir(a)
        except OSError:
            files += 1  # unreadable: assume it holds something
            continue
        with it:
            for e in it:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                pb = os.path.join(b, e.name)
                if stat.S_ISDIR(st.st_mode):
                    stack.append((e.path, pb))
                elif ((stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode))
                      and not _same_file(e.path, pb, st)):
                    files += 1
                    size += st.st_size
    return files, size


@dataclass
class IgnoredLoss:
    """Ignored entries holding content the main worktree does not have (e.g. ``.env``)."""
    entries: list[str] = field(default_factory=list)  # as git lists them: ".env", "build/"
    files: int = 0
    size: int = 0

    def describe(self) -> str:
        names = ", ".join(self.entries[:3]) + (", ..." if len(self.entries) > 3 else "")
        s = "" if self.files == 1 else "s"
        return f"{self.files} ignored file{s} ({names}; {_human(self.size)})"


def ignored_losses(path: Path | str, main: Path | str | None = None,
                   entries: Sequence[str] | None = None) -> IgnoredLoss:
    """What removing the worktree ``path`` would delete among its git-ignored entries.

    Every ignored file or symlink counts, whatever its size or directory, unless the main
    worktree has identical content at the same path (``copy_ignored`` copies).
    """
    path = Path(path)
    main = Path(main) if main is not None else repo_root(path)
    loss = IgnoredLoss()
    for rel in _ignored_entries(path) if entries is None else entries:
        files, size = _unique_content(str(path / rel), str(main / rel))
        if files:
            loss.entries.append(rel)
            loss.files += files
            loss.size += size
    return loss


@dataclass
class NestedRepos:
    """Untracked git repositories inside a worktree (an agent's ``git clone`` or ``git init``)."""
    roots: list[str] = field(default_factory=list)    # outermost ones ("vendor/lib")
    repos: list[str] = field(default_factory=list)    # all of them, nested ones included
    files: list[str] = field(default_factory=list)    # their tracked + untracked files
    ignored: list[str] = field(default_factory=list)  # their ignored entries


def _scan_nested(top: Path, roots: list[str]) -> NestedRepos:
    """Files of each nested repo as its own git sees them (worktree-relative paths)."""
    scan = NestedRepos(roots=list(roots))
    todo = list(roots)
    while todo:
        rel = todo.pop(0)
        d = top / rel
        scan.repos.append(rel)
        listed = git(d, "ls-files", "-z", "--cached", "--others", "--exclude-standard").stdout
        for p in dict.fromkeys(x for x in listed.split("\0") if x):
            full = d / p
            inner = f"{rel}/{p.rstrip('/')}"
            if full.is_symlink() or full.is_file():
                scan.files.append(inner)
            elif full.is_dir() and os.path.lexists(full / ".git"):
                todo.append(inner)  # a repo inside the nested repo
        ignored = git(d, "ls-files", "-z", "--others", "--ignored", "--exclude-standard",
                      "--directory").stdout
        scan.ignored += [f"{rel}/{p}" for p in ignored.split("\0") if p]
    return scan


@dataclass
class _Losses:
    state: WorktreeState
    untracked: list[str]        # untracked paths other than nested repos
    nested: NestedRepos
    ignored: IgnoredLoss

    def summary(self, ignored: bool = True) -> list[str]:
        out = []
        if self.state.uncommitted:
            out.append(f"{len(self.state.uncommitted)} uncommitted")
        if self.untracked:
            out.append(f"{len(self.untracked)} untracked")
        if self.state.unpushed:
            out.append(f"{self.state.unpushed} unpushed")
        roots = self.nested.roots
        if roots:
            out.append(f"{len(roots)} nested git repo{'s' if len(roots) > 1 else ''} "
                       f"({', '.join(roots[:3])}{', ...' if len(roots) > 3 else ''})")
        if ignored and self.ignored.files:
            out.append(self.ignored.describe())
        return out


def _losses(path: Path, main: Path) -> _Losses:
    state = worktree_state(path)
    roots = [u.rstrip("/") for u in state.untracked
             if u.endswith("/") and os.path.lexists(path / u / ".git")]
    untracked = [u for u in state.untracked if u.rstrip("/") not in roots]
    nested = _scan_nested(path, roots) if roots else NestedRepos()
    ignored = ignored_losses(path, main, _ignored_entries(path) + nested.ignored)
    return _Losses(state, untracked, nested, ignored)


def removal_losses(path: Path | str) -> list[str]:
    """What a plain remove_worktree(path) would refuse over ([] = safe); changes nothing.

    e.g. ["1 uncommitted", "2 untracked", "1 nested git repo (vendor/lib)",
    "3 ignored files (.env, secrets/, build/; 2.0 MiB)"]
    """
    path = Path(os.path.abspath(path))
    return _losses(path, repo_root(path)).summary()
