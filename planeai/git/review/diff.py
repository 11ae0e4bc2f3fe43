"""A worktree against its base: committed, uncommitted and untracked changes in one diff.

Tracked files: ``git diff <merge-base>`` compares the base commit with the files on disk (the
worktree's own index is only read, for its stat cache, never written: an agent may be using
it). Untracked files (``git ls-files -o --exclude-standard``, listed in parallel with the
diff) are shown as added; their lines are counted here the way git counts them (a NUL in the
first 8000 bytes makes a file binary). Measured on 10,000 files with 5,000 changed: a temporary
index with the untracked files as intent-to-add cost ~50 ms more than the diff itself, this
costs the file reads.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from planeai.errors import GitError
from planeai.git.safe_git import git


@dataclass(frozen=True)
class FileChange:
    path: str
    status: str               # A added, M modified, D deleted, R renamed, T type changed
    added: int                # lines; 0 for binary files
    deleted: int
    binary: bool = False
    old_path: str | None = None   # renames

    def as_dict(self) -> dict:
        return {"path": self.path, "status": self.status, "added": self.added,
                "deleted": self.deleted, "binary": self.binary, "old_path": self.old_path}


@dataclass
class WorktreeDiff:
    worktree: Path
    base: str                 # the merge-base commit the diff starts from
    base_ref: str             # the branch it was computed against
    files: list[FileChange] = field(default_factory=list)

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    @property
    def deleted(self) -> int:
        return sum(f.deleted for f in self.files)

    def summary(self) -> str:
        """``+12 -3`` (what the sidebar shows), ``no changes`` when empty."""
        return f"+{self.added} -{self.deleted}" if self.files else "no changes"

    def patch(self, *, color: bool = False, paths: list[str] | None = None) -> str:
        """The unified diff text (computed on demand: it can be large)."""
        return patch_text(self.worktree, self.base, color=color, paths=paths)

    def as_dict(self) -> dict:
        return {"worktree": str(self.worktree), "base": self.base, "base_ref": self.base_ref,
                "added": self.added, "deleted": self.deleted,
                "files": [f.as_dict() for f in self.files]}


def merge_base(worktree: Path | str, base_ref: str) -> str:
    """The commit the worktree's branch forked from ``base_ref`` (HEAD itself when there is
    no common history)."""
    proc = git(worktree, "merge-base", "HEAD", base_ref, check=False)
    if proc.returncode == 0 and proc.stdout.strip():
        return proc.stdout.strip()
    head = git(worktree, "rev-parse", "-q", "--verify", "HEAD^{commit}", check=False)
    if head.returncode != 0:
        raise GitError(f"{worktree} has no commit to diff against")
    return head.stdout.strip()


def untracked(worktree: Path | str) -> list[str]:
    out = git(worktree, "ls-files", "-z", "--others", "--exclude-standard", timeout=3600).stdout
    return [p for p in out.split("\0") if p]


_BINARY_PROBE = 8000  # what git looks at (buffer_is_binary)


def _read_new(worktree: Path, rel: str) -> bytes | None:
    """A new file's content as git would diff it (a symlink: its target); None for a
    directory (a nested git repository)."""
    path = worktree / rel
    if rel.endswith("/") or (path.is_dir() and not path.is_symlink()):
        return None
    if path.is_symlink():
        return os.fsencode(os.readlink(path))
    with open(path, "rb") as f:
        return f.read()


def _new_file(worktree: Path, rel: str) -> FileChange:
    data = _read_new(worktree, rel)
    if data is None:
        return FileChange(rel.rstrip("/"), "A", 0, 0, binary=True)
    if b"\0" in data[:_BINARY_PROBE]:
        return FileChange(rel, "A", 0, 0, binary=True)
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    return FileChange(rel, "A", lines, 0)


def _new_file_patch(worktree: Path, rel: str) -> str:
    data = _read_new(worktree, rel)
    name = rel.rstrip("/")
    mode = "120000" if (worktree / name).is_symlink() else (
        "100755" if os.access(worktree / name, os.X_OK) else "100644")
    head = f"diff --git a/{name} b/{name}\nnew file mode {mode}\n"
    if data is None:
        return head.replace(f"new file mode {mode}", "new file mode 160000") + \
            f"(nested git repository {name}/)\n"
    if b"\0" in data[:_BINARY_PROBE]:
        return head + f"Binary files /dev/null and b/{name} differ\n"
    if not data:
        return head
    text = data.decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    tail = "" if text.endswith("\n") else "\n\\ No newline at end of file"
    if text.endswith("\n"):
        lines = lines[:-1]
    body = "".join(f"+{ln}\n" for ln in lines).rstrip("\n") + tail + "\n"
    n = len(lines)
    return head + f"--- /dev/null\n+++ b/{name}\n@@ -0,0 +1{',' + str(n) if n != 1 else ''} @@\n" \
        + body


def _with_untracked(worktree: Path, run):
    """``run()`` while the untracked files are listed in another thread: (its result, them)."""
    found: dict[str, object] = {}

    def lister() -> None:
        try:
            found["files"] = untracked(worktree)
        except BaseException as e:  # re-raised in the caller's thread
            found["error"] = e

    th = threading.Thread(target=lister, name="planeai-untracked", daemon=True)
    th.start()
    try:
        result = run()
    finally:
        th.join()
    if "error" in found:
        raise found["error"]  # type: ignore[misc]
    return result, found["files"]


def _parse(out: str) -> list[FileChange]:
    """``--raw --numstat -z -M`` output: raw records (status) then numstat (counts)."""
    parts = out.split("\0")
    statuses: dict[str, tuple[str, str | None]] = {}
    counts: list[tuple[str, str, str]] = []
    i = 0
    while i < len(parts):
        p = parts[i]
        if not p:
            i += 1
            continue
        if p.startswith(":"):
            st = p.split()[-1]
            if st[0] in "RC":
                statuses[parts[i + 2]] = (st[0], parts[i + 1])
                i += 3
            else:
                statuses[parts[i + 1]] = (st[0], None)
                i += 2
            continue
        a, d, path = p.split("\t", 2)
        if path == "":  # rename: the two paths follow
            path = parts[i + 2]
            i += 3
        else:
            i += 1
        counts.append((a, d, path))
    files = []
    for a, d, path in counts:
        st, old = statuses.get(path, ("M", None))
        binary = a == "-"
        files.append(FileChange(path, st, 0 if binary else int(a), 0 if binary else int(d),
                                binary, old))
    return files


def worktree_diff(worktree: Path | str, base_ref: str) -> WorktreeDiff:
    """Files changed in ``worktree`` since it forked from ``base_ref`` (with +/- counts)."""
    worktree = Path(worktree)
    base = merge_base(worktree, base_ref)
    out, new = _with_untracked(worktree, lambda: git(
        worktree, "diff", "--raw", "--numstat", "-z", "-M", base, timeout=3600).stdout)
    files = _parse(out) + [_new_file(worktree, rel) for rel in new]
    files.sort(key=lambda f: f.path)
    return WorktreeDiff(worktree, base, base_ref, files)


def patch_text(worktree: Path | str, base: str, *, color: bool = False,
               paths: list[str] | None = None) -> str:
    """The unified diff: tracked changes from git, untracked files as new files."""
    worktree = Path(worktree)
    args = ["diff", "-M", f"--color={'always' if color else 'never'}", base]
    if paths:
        args += ["--", *[f":(literal){p}" for p in paths]]
    text, new = _with_untracked(worktree, lambda: git(worktree, *args, timeout=3600).stdout)
    if paths is not None:
        wanted = set(paths)
        new = [n for n in new if n.rstrip("/") in wanted]
    extra = "".join(_new_file_patch(worktree, rel) for rel in new)
    if color and extra:
        extra = "".join(_paint(line) for line in extra.splitlines(keepends=True))
    return text + extra


def _paint(line: str) -> str:
    """git's default colours for a new file's patch lines."""
    if line.startswith(("diff --git", "new file mode", "--- ", "+++ ")):
        return f"\x1b[1m{line.rstrip(chr(10))}\x1b[m\n"
    if line.startswith("@@"):
        return f"\x1b[36m{line.rstrip(chr(10))}\x1b[m\n"
    if line.startswith("+"):
        return f"\x1b[32m{line.rstrip(chr(10))}\x1b[m\n"
    return line


def shortstat(worktree: Path | str, base_ref: str) -> tuple[int, int, int]:
    """(files, added, deleted): the cheap ``+N -M`` of a sidebar row."""
    d = worktree_diff(worktree, base_ref)
    return len(d.files), d.added, d.deleted
