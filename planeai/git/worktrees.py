"""One git worktree and branch per task: create, reuse, inspect, remove, prune.

Every git call goes through :func:`planeai.git.safe_git.git` (hardened, argv lists, no shell).

Concurrency: the step that mutates shared git metadata (branch creation plus worktree
registration, done as ``git worktree add --no-checkout [--no-track -b]``, ~10 ms) runs under an
``fcntl.flock`` on ``<git-common-dir>/planeai-worktree.lock`` and is retried on git lock errors
(``could not lock config file``, ``Unable to create '...lock'``).  Populating the files
(``git reset --hard``, what ``git worktree add`` itself runs) happens outside the lock, so N
checkouts of a big repo proceed in parallel.  On any failure the worktree registration, the
directory we made and the branch we made are removed again: no orphan branch, no half tree.

Removal never deletes work without ``force``: a plain removal refuses when the worktree holds
uncommitted, untracked or unpushed work, an untracked nested git repo, or any git-ignored file
whose content the main worktree lacks (``git worktree remove`` deletes ignored files silently;
``.env``, keys and build output are work too).  A forced removal first saves, under one id
``<worktree name>-<UTC stamp>``:

* ``refs/planeai/recovery/<id>``: a commit (parent: HEAD) of tracked changes, untracked files
  and nested repos' files as plain files (not gitlinks);
* ``refs/planeai/recovery-nested/<id>/<path>.git/{HEAD,refs/...}``: each nested repo's refs,
  fetched into the repository, so its commits stay reachable;
* ``<state dir>/recovery/<repo name>/<id>/`` (0700): the ignored files, *moved* there (a
  rename on one filesystem), never into git objects: secrets must not end up in objects that
  ``push --mirror`` or a copied ``.git`` carries, and ``node_modules`` would cost a hash per file.
"""

from __future__ import annotations

import fcntl
import filecmp
import logging
import os
import re
import shutil
import stat
import tempfile
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator, Sequence

from planeai.errors import GitError, WorktreeError
from planeai.git.safe_git import default_branch, git, git_common_dir, last_error_line, repo_root

log = logging.getLogger("planeai.git")

LOCK_NAME = "planeai-worktree.lock"
RECOVERY_PREFIX = "refs/planeai/recovery/"
RECOVERY_NESTED_PREFIX = "refs/planeai/recovery-nested/"
BRANCH_PREFIX = "planeai/"
# `checkout.workers` for populating new worktrees (git's parallel checkout; git only uses it
# above checkout.thresholdForParallelism = 100 files).  2 measured 0.15-0.2x the time of a
# sequential checkout of 20,000 files here; None/1 = sequential like plain `git worktree add`.
CHECKOUT_WORKERS: int | None = 2
_LOCK_ERRORS = re.compile(
    r"could not lock config file|Unable to create '[^']*\.lock'|cannot lock ref|"
    r"unable to lock|index\.lock", re.I)

__all__ = [
    "Worktree", "WorktreeState", "slugify", "branch_for", "validate_branch_name",
    "validate_worktree_name", "ensure_worktree", "worktree_state", "remove_worktree",
    "prune_worktrees", "list_worktrees", "ignored_losses", "IgnoredLoss", "NestedRepos",
    "Recovery", "removal_losses", "repo_lock",
]


# --------------------------------------------------------------------------- names

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


# --------------------------------------------------------------------------- listing

@dataclass
class Worktree:
    path: Path
    branch: str            # short name ("planeai/PLA-1-x"); "" when detached or bare
    head: str              # commit id ("" for an unborn branch)
    created: bool          # True when ensure_worktree made it in this call
    bare: bool = False
    detached: bool = False
    locked: str | None = None     # lock reason ("" if locked without one)
    prunable: str | None = None   # git's reason when the directory is gone
    copied: list[str] = field(default_factory=list)  # copy_ignored results (repo-relative)


def list_worktrees(repo: Path | str) -> list[Worktree]:
    """All registered worktrees of ``repo`` (main first), from ``git worktree list --porcelain``."""
    out = git(repo, "worktree", "list", "--porcelain", "-z").stdout
    result: list[Worktree] = []
    cur: Worktree | None = None
    for field_ in out.split("\0"):
        if not field_:
            if cur is not None:
                result.append(cur)
                cur = None
            continue
        key, _, value = field_.partition(" ")
        if key == "worktree":
            cur = Worktree(path=Path(value), branch="", head="", created=False)
        elif cur is None:
            continue
        elif key == "HEAD":
            cur.head = value
        elif key == "branch":
            cur.branch = value[len("refs/heads/"):] if value.startswith("refs/heads/") else value
        elif key == "bare":
            cur.bare = True
        elif key == "detached":
            cur.detached = True
        elif key == "locked":
            cur.locked = value
        elif key == "prunable":
            cur.prunable = value
    if cur is not None:
        result.append(cur)
    if result and set(result[0].head) == {"0"}:
        result[0].head = ""
    for wt in result:
        if set(wt.head) == {"0"}:
            wt.head = ""
    return result


def _same_path(a: Path, b: Path) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _find(wts: list[Worktree], path: Path) -> Worktree | None:
    return next((w for w in wts if _same_path(w.path, path)), None)


# --------------------------------------------------------------------------- locking

@contextmanager
def repo_lock(common_dir: Path, timeout: float = 300) -> Iterator[None]:
    """Exclusive flock on ``<common_dir>/planeai-worktree.lock`` (threads and processes)."""
    lock_path = common_dir / LOCK_NAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise WorktreeError(f"timed out after {timeout:g}s waiting for {lock_path}")
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _git_retry(cwd: Path, *args: str, attempts: int = 30,
               before_retry: Callable[[], None] | None = None) -> None:
    """Run a metadata-mutating git command, retrying while another git holds a lock file."""
    delay = 0.02
    for n in range(attempts):
        proc = git(cwd, *args, check=False)
        if proc.returncode == 0:
            return
        if n + 1 < attempts and _LOCK_ERRORS.search(proc.stderr):
            if before_retry is not None:
                before_retry()  # e.g. drop the branch a half-done `worktree add -b` left
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
            continue
        raise WorktreeError(f"git {' '.join(args[:2])} failed: {last_error_line(proc.stderr)}")


# --------------------------------------------------------------------------- creation

def _ref_oid(repo: Path, ref: str) -> str | None:
    proc = git(repo, "rev-parse", "-q", "--verify", f"{ref}^{{commit}}", check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def _check_copy_patterns(patterns: Sequence[str]) -> list[str]:
    checked = []
    for pat in patterns:
        pp = PurePosixPath(pat)
        if (not pat or not pp.parts or pp.is_absolute() or pat.startswith("~")
                or ".." in pp.parts or "\0" in pat):
            raise WorktreeError(f"copy_ignored path {pat!r} must be relative and stay inside the "
                                "repository")
        checked.append(pat)
    return checked


def ensure_worktree(repo: Path | str, root: Path | str, name: str, branch: str,
                    base: str | None = None, *, copy_ignored: Sequence[str] = ()) -> Worktree:
    """The worktree ``root/<repo-name>/<name>`` on ``branch``: reused, attached or created.

    * registered there on ``branch`` -> returned with ``created=False``;
    * ``branch`` exists but has no worktree -> checked out there;
    * otherwise ``branch`` is made from ``base`` (default branch if None) with ``--no-track``.
    ``copy_ignored`` (repo-relative paths/globs) copies git-ignored files from the main
    worktree into a newly created one, never overwriting.
    """
    validate_worktree_name(name)
    validate_branch_name(branch)
    patterns = _check_copy_patterns(copy_ignored)
    main = repo_root(repo)
    target = Path(os.path.abspath(Path(root).expanduser())) / main.name / name

    # Fast path without the lock: already there.
    wts = list_worktrees(main)
    found = _reuse(wts, target, branch)
    if found:
        return found

    common = git_common_dir(main)
    with repo_lock(common):
        wts = list_worktrees(main)
        found = _reuse(wts, target, branch)
        if found:
            return found
        if any(w.prunable for w in wts) or (_find(wts, target) and not target.exists()):
            git(main, "worktree", "prune")
            wts = list_worktrees(main)
        holder = next((w for w in wts if w.branch == branch), None)
        if holder is not None:
            raise WorktreeError(f"branch {branch} is already checked out in {holder.path}")
        if target.exists() or target.is_symlink():
            if not target.is_dir() or target.is_symlink() or any(target.iterdir()):
                raise WorktreeError(f"{target} exists and is not a worktree of {main}")
        target_existed = target.exists()

        made_branch_oid: str | None = None
        if _ref_oid(main, f"refs/heads/{branch}"):
            add_args = ["worktree", "add", "--no-checkout", str(target), branch]
        else:
            base_name = base or default_branch(main)
            base_oid = _ref_oid(main, base_name)
            if base_oid is None:
                raise WorktreeError(f"base {base_name!r} is not a commit in {main}")
            made_branch_oid = base_oid
            add_args = ["worktree", "add", "--no-checkout", "--no-track", "-b", branch,
                        str(target), base_oid]
        target.parent.mkdir(parents=True, exist_ok=True)
        def undo() -> None:
            _undo(main, target, target_existed, branch, made_branch_oid)

        try:
            _git_retry(main, *add_args, before_retry=undo)
        except BaseException:
            _undo(main, target, target_existed, branch, made_branch_oid)
            raise

    # Outside the lock: populate files (what `git worktree add` runs itself), copy ignored.
    try:
        _populate(target)
        copied = _copy_ignored(main, target, patterns) if patterns else []
    except BaseException:
        with repo_lock(common):
            _undo(main, target, target_existed, branch, made_branch_oid)
        raise
    head = git(target, "rev-parse", "-q", "--verify", "HEAD", check=False).stdout.strip()
    return Worktree(path=target, branch=branch, head=head, created=True, copied=copied)


def _reuse(wts: list[Worktree], target: Path, branch: str) -> Worktree | None:
    wt = _find(wts, target)
    if wt is None or wt.prunable or not target.is_dir():
        return None
    if wt.branch != branch:
        on = wt.branch or "a detached HEAD"
        raise WorktreeError(f"{target} is a worktree on {on}, not on {branch}")
    return Worktree(path=target, branch=branch, head=wt.head, created=False,
                    locked=wt.locked)


def _populate(target: Path) -> None:
    # Same command `git worktree add` runs after registering; hardened runner disables the
    # repo's filters/hooks.  No -q: errors only go to stderr anyway.
    workers = ("-c", f"checkout.workers={CHECKOUT_WORKERS}") if CHECKOUT_WORKERS else ()
    git(target, *workers, "reset", "--hard", "--no-recurse-submodules", "-q", timeout=3600)


def _undo(main: Path, target: Path, target_existed: bool, branch: str,
          made_branch_oid: str | None) -> None:
    """Remove what a failed creation left: registration, directory, branch we made."""
    try:
        wt = _find(list_worktrees(main), target)
        if wt is not None:
            git(main, "worktree", "remove", "--force", "--force", str(target), check=False)
        if target.is_symlink():
            target.unlink()
        elif target.exists():
            shutil.rmtree(target, ignore_errors=True)
        if target_existed:
            target.mkdir(parents=True, exist_ok=True)
        git(main, "worktree", "prune", check=False)
        if made_branch_oid:
            still_used = any(w.branch == branch for w in list_worktrees(main))
            if not still_used:
                # Only if it still points where we made it: never delete someone else's work.
                git(main, "update-ref", "-d", f"refs/heads/{branch}", made_branch_oid,
                    check=False)
    except GitError as e:  # cleanup must not hide the original error
        log.warning("cleanup after failed worktree creation of %s: %s", target, e)


def _copy_ignored(main: Path, target: Path, patterns: Sequence[str]) -> list[str]:
    main_real = Path(os.path.realpath(main))
    target_real = Path(os.path.realpath(target))
    candidates: list[str] = []
    for pat in patterns:
        try:
            matches = sorted(main.glob(pat))
        except (ValueError, NotImplementedError) as e:
            raise WorktreeError(f"copy_ignored pattern {pat!r} is not usable: {e}") from None
        for src in matches:
            rel = src.relative_to(main).as_posix()
            if rel.split("/")[0] == ".git":
                continue
            real = Path(os.path.realpath(src))
            if real != main_real and main_real not in real.parents:
                raise WorktreeError(f"copy_ignored: {rel} resolves outside the repository")
            if src.is_file() or src.is_dir():
                candidates.append(rel)
    if not candidates:
        return []
    proc = git(main, "check-ignore", "-z", "--stdin", check=False,
               input=("\0".join(candidates) + "\0").encode())
    if proc.returncode not in (0, 1):
        raise WorktreeError(f"copy_ignored: git check-ignore failed: {proc.stderr.strip()}")
    ignored = {p for p in proc.stdout.split("\0") if p}
    copied: list[str] = []
    for rel in candidates:
        if rel not in ignored:
            log.info("copy_ignored: %s is not ignored by git; not copied", rel)
            continue
        dst = target / rel
        parent_real = Path(os.path.realpath(dst.parent))
        if parent_real != target_real and target_real not in parent_real.parents:
            raise WorktreeError(f"copy_ignored: {rel} would be written outside the worktree")
        if dst.exists() or dst.is_symlink():
            continue  # never overwrite
        dst.parent.mkdir(parents=True, exist_ok=True)
        src = main / rel
        if src.is_dir():
            shutil.copytree(src, dst, symlinks=True)
        else:
            shutil.copy2(src, dst, follow_symlinks=False)
        copied.append(rel)
    return copied


# --------------------------------------------------------------------------- state

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


# --------------------------------------------------------------------------- removal

class Recovery(str):
    """The recovery ref a forced removal made (a str: its name), and where the rest went."""
    kept: list[str]
    nested_refs: dict[str, str]     # nested repo path -> ref prefix holding its refs
    ignored_dir: Path | None
    ignored: IgnoredLoss

    def __new__(cls, ref: str, kept: list[str], nested_refs: dict[str, str],
                ignored_dir: Path | None, ignored: IgnoredLoss) -> "Recovery":
        self = super().__new__(cls, ref)
        self.kept, self.nested_refs = kept, nested_refs
        self.ignored_dir, self.ignored = ignored_dir, ignored
        return self

    def describe(self) -> str:
        """One line: what the ref keeps, where nested commits and ignored files went."""
        out = f"unsaved work kept in {str(self)}"
        if self.kept:
            out += f" ({', '.join(self.kept)})"
        if self.nested_refs:
            out += f"; nested repos' commits in {RECOVERY_NESTED_PREFIX}{self.rsplit('/', 1)[1]}/"
        if self.ignored_dir is not None:
            out += f"; {self.ignored.describe()} moved to {self.ignored_dir}"
        return out


def _is_merged(repo: Path, branch: str) -> bool:
    """Tip of ``branch`` reachable from the default branch (local or origin) or a recovery ref."""
    tip = _ref_oid(repo, f"refs/heads/{branch}")
    if tip is None:
        return True
    try:
        d = default_branch(repo)
    except GitError:
        d = None
    targets = [f"refs/heads/{d}", f"refs/remotes/origin/{d}"] if d and d != branch else []
    for t in targets:
        if _ref_oid(repo, t) and git(repo, "merge-base", "--is-ancestor", tip, t,
                                     check=False).returncode == 0:
            return True
    rec = git(repo, "for-each-ref", "--count=1", "--format=%(refname)", "--contains", tip,
              RECOVERY_PREFIX.rstrip("/")).stdout.strip()
    return bool(rec)


_REF_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _nested_ref_names(rid: str, repos: list[str]) -> dict[str, str]:
    """nested repo path -> ``refs/planeai/recovery-nested/<rid>/<path>.git`` (ref-safe)."""
    names: dict[str, str] = {}
    for rel in repos:
        comps = []
        for c in rel.split("/"):
            c = _REF_UNSAFE.sub("_", c).replace("..", "__")
            c = "_" + c[1:] if c.startswith(".") else c
            comps.append(c + "_" if c.endswith((".lock", ".")) else c)
        base = "/".join(comps)
        name, n = f"{base}.git", 1
        while name in names.values():
            n += 1
            name = f"{base}-{n}.git"
        names[rel] = f"{RECOVERY_NESTED_PREFIX}{rid}/{name}"
    return names


def _recovery_tree(wt_path: Path, loss: _Losses) -> str:
    """Tree of HEAD + uncommitted + untracked + nested repos' files (as plain files)."""
    gitdir = Path(git(wt_path, "rev-parse", "--path-format=absolute", "--git-dir").stdout.strip())
    fd, tmp_index = tempfile.mkstemp(prefix="planeai-recovery-index-", dir=gitdir)
    os.close(fd)
    try:
        real_index = gitdir / "index"
        if real_index.exists():
            shutil.copyfile(real_index, tmp_index)  # keeps stat info: only changed files hashed
        else:
            os.unlink(tmp_index)
        env = {"GIT_INDEX_FILE": tmp_index}
        # `git add` turns a nested repo into a gitlink (or fails when it has no commit):
        # leave them out here and add their files one by one below.
        skip = [f":(exclude,literal){r}" for r in loss.nested.roots]
        git(wt_path, "add", "-A", "--", ".", *skip, env=env, timeout=3600)
        if loss.nested.files:
            git(wt_path, "update-index", "--add", "-z", "--stdin", env=env, timeout=3600,
                input="".join(f + "\0" for f in loss.nested.files).encode("utf-8",
                                                                            "surrogateescape"))
        return git(wt_path, "write-tree", env=env).stdout.strip()
    finally:
        if os.path.exists(tmp_index):
            os.unlink(tmp_index)


def _fetch_nested(main: Path, repo_dir: Path, prefix: str) -> None:
    """Copy a nested repo's commits into ``main`` under ``prefix``/{HEAD,refs/...}."""
    specs = [f"+refs/*:{prefix}/refs/*"]
    if git(repo_dir, "rev-parse", "-q", "--verify", "HEAD^{commit}", check=False).returncode == 0:
        specs.append(f"+HEAD:{prefix}/HEAD")
    elif not git(repo_dir, "for-each-ref", "--count=1", "--format=x").stdout.strip():
        return  # no commits yet: its files are all there is
    proc = git(main, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--atomic",
               "--no-auto-maintenance", str(repo_dir), *specs, check=False, timeout=3600)
    if proc.returncode != 0:
        raise WorktreeError(f"could not save the commits of nested repo {repo_dir}: "
                            f"{last_error_line(proc.stderr)}; nothing was removed")


def _head_name(repo_dir: Path) -> str:
    """"on branch main" / "detached HEAD": what to check out again after restoring it."""
    proc = git(repo_dir, "symbolic-ref", "-q", "--short", "HEAD", check=False)
    return f"on branch {proc.stdout.strip()}" if proc.returncode == 0 else "detached HEAD"


def _drop_refs(main: Path, prefix: str) -> None:
    out = git(main, "for-each-ref", "--format=%(refname)", prefix).stdout
    for ref in out.split():
        git(main, "update-ref", "-d", ref, check=False)


def _private_dir(root: Path, *names: str) -> Path:
    """``root/names...``: every directory made here is 0700; the last one must be new."""
    missing = []
    d = root
    while not d.exists():
        missing.append(d)
        d = d.parent
    chain = [*reversed(missing), *(root.joinpath(*names[:n + 1]) for n in range(len(names)))]
    for n, d in enumerate(chain):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            if n + 1 == len(chain):
                raise  # that id is taken
            continue
        os.chmod(d, 0o700)  # whatever the umask
    return chain[-1]


def _remove_empty_dirs(top: Path) -> None:
    """Remove ``top`` and directories under it that are empty; never a file."""
    for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
        try:
            os.rmdir(dirpath)
        except OSError:
            pass


def _move_ignored(wt_path: Path, entries: list[str], dest: Path) -> None:
    """Move ignored entries to ``dest`` (renames on one filesystem); all or none."""
    moved: list[str] = []
    for entry in entries:
        rel = entry.rstrip("/")
        try:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(wt_path / rel, dest / rel)
            moved.append(rel)
        except OSError as e:
            for back in reversed(moved):
                try:
                    shutil.move(dest / back, wt_path / back)
                except OSError:
                    pass
            raise WorktreeError(f"could not move ignored {rel} to {dest}: "
                                f"{e.strerror or e}; nothing was removed") from None


def _allocate_id(main: Path, wt_path: Path, recovery_dir: Path | None,
                 need_dir: bool) -> tuple[str, Path | None]:
    """A recovery id free as a ref and (when needed) as a directory: ``<name>-<UTC stamp>``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        rid = f"{wt_path.name}-{stamp}" + (f"-{n}" if n > 1 else "")
        if _ref_oid(main, RECOVERY_PREFIX + rid) or git(
                main, "for-each-ref", "--count=1", "--format=x",
                f"{RECOVERY_NESTED_PREFIX}{rid}").stdout.strip():
            continue
        if not need_dir:
            return rid, None
        if recovery_dir is None:
            from planeai.paths import locations
            recovery_dir = locations().state_dir / "recovery"
        try:
            return rid, _private_dir(Path(recovery_dir), main.name, rid)
        except FileExistsError:
            continue
    raise WorktreeError(f"could not create a recovery ref for {wt_path}")


def _save_recovery(main: Path, wt_path: Path, loss: _Losses, recovery_dir: Path | None,
                   reason: str) -> Recovery:
    """Save everything removal would lose; see the module docstring for what goes where."""
    kept = loss.summary(ignored=False) or ([reason] if not loss.ignored.files else [])
    rid, ign_dir = _allocate_id(main, wt_path, recovery_dir, bool(loss.ignored.entries))
    nested_refs = _nested_ref_names(rid, loss.nested.repos)
    msg = (f"planeai recovery of worktree {wt_path} ({rid})\n\n"
           f"Kept here: {', '.join(kept) or 'HEAD only (just ignored files were at risk)'}\n")
    if nested_refs:
        msg += ("\nNested git repos (their files are plain files in this commit; their HEAD "
                "and refs are under these prefixes):\n"
                + "".join(f"  {rel}  {ref}/  ({_head_name(wt_path / rel)})\n"
                          for rel, ref in nested_refs.items()))
    if ign_dir is not None:
        msg += (f"\nIgnored files (not in git) moved to {ign_dir}:\n"
                + "".join(f"  {e}\n" for e in loss.ignored.entries))
    args = ["commit-tree", _recovery_tree(wt_path, loss), "-m", msg]
    if loss.state.head:
        args[2:2] = ["-p", loss.state.head]
    ident = {"GIT_AUTHOR_NAME": "planeai", "GIT_AUTHOR_EMAIL": "planeai@localhost",
             "GIT_COMMITTER_NAME": "planeai", "GIT_COMMITTER_EMAIL": "planeai@localhost"}
    commit = git(wt_path, *args, env=ident).stdout.strip()
    ref = RECOVERY_PREFIX + rid
    try:
        for rel, prefix in nested_refs.items():
            _fetch_nested(main, wt_path / rel, prefix)
        # Empty old value: create only, never overwrite an existing recovery ref.
        if git(main, "update-ref", ref, commit, "", check=False).returncode != 0:
            raise WorktreeError(f"could not create the recovery ref {ref}; nothing was removed")
        if ign_dir is not None:
            try:
                _move_ignored(wt_path, loss.ignored.entries, ign_dir)
            except WorktreeError:
                git(main, "update-ref", "-d", ref, commit, check=False)
                raise
    except BaseException:
        _drop_refs(main, f"{RECOVERY_NESTED_PREFIX}{rid}")
        if ign_dir is not None:
            _remove_empty_dirs(ign_dir)  # what could not be moved back stays there
        raise
    return Recovery(ref, kept, nested_refs, ign_dir, loss.ignored)


def remove_worktree(repo: Path | str, path: Path | str, *, force: bool = False,
                    delete_branch: bool = False,
                    recovery_dir: Path | str | None = None) -> Recovery | None:
    """Remove a linked worktree; return the Recovery (a ref name) if anything was saved.

    Without ``force`` it refuses (WorktreeError listing N uncommitted, N untracked, N unpushed,
    nested git repos, N ignored files with their size) when anything would be lost.  With
    ``force`` it first saves everything: a commit at ``refs/planeai/recovery/<name>-<UTC
    stamp>`` (parent: HEAD) with the changes and nested repos' files, nested repos' refs under
    ``refs/planeai/recovery-nested/<same id>/<path>.git/``, and ignored files moved to
    ``<recovery_dir>/<repo name>/<same id>/`` (default: ``<state dir>/recovery``, 0700).
    ``delete_branch`` deletes the branch only when merged into the default branch or saved in
    a recovery ref; otherwise (without force) it refuses before touching anything.
    """
    main = repo_root(repo)
    path = Path(os.path.abspath(path))
    wts = list_worktrees(main)
    wt = _find(wts, path)
    if wt is None:
        raise WorktreeError(f"{path} is not a worktree of {main}")
    if _same_path(wt.path, main) or wt is wts[0]:
        raise WorktreeError(f"{path} is the main worktree of {main}; refusing to remove it")
    branch = wt.branch
    common = git_common_dir(main)

    if not path.is_dir():  # deleted by hand: only the registration is left
        with repo_lock(common):
            git(main, "worktree", "prune")
        if delete_branch and branch:
            if not _is_merged(main, branch):
                raise WorktreeError(f"worktree {path} was gone; kept unmerged branch {branch}")
            git(main, "branch", "-D", branch)
        return None

    loss = _losses(path, main)
    losses = loss.summary()
    merged = _is_merged(main, branch) if (delete_branch and branch) else True
    if not force:
        if losses:
            raise WorktreeError(f"worktree {path} has work that would be lost: "
                                f"{', '.join(losses)}; commit/push it or remove with force")
        if not merged:
            raise WorktreeError(f"branch {branch} is not merged into the default branch; "
                                "not deleting it (use force to save it in a recovery ref)")
        if wt.locked is not None:
            raise WorktreeError(f"worktree {path} is locked ({wt.locked or 'no reason'})")

    recovery: Recovery | None = None
    if force and (losses or not merged):
        recovery = _save_recovery(main, path, loss, Path(recovery_dir) if recovery_dir else None,
                                  f"unmerged branch {branch}")
        log.info("before removing %s: %s", path, recovery.describe())  # callers print it

    with repo_lock(common):
        args = ["worktree", "remove"]
        if force:
            args += ["--force"]
        if force and wt.locked is not None:
            args += ["--force"]
        try:
            _git_retry(main, *args, str(path))
        except WorktreeError:
            if not force:
                raise
            # e.g. files git cannot remove; fall back to deleting and pruning.
            shutil.rmtree(path, ignore_errors=True)
            git(main, "worktree", "prune")
            if path.exists():
                raise
        if delete_branch and branch:
            if recovery or _is_merged(main, branch):
                git(main, "branch", "-D", branch)
    return recovery


def prune_worktrees(repo: Path | str, root: Path | str) -> list[Path]:
    """Drop registrations whose directories vanished and empty leftover dirs under root/<repo>.

    Returns what was pruned.  Never deletes a directory that has anything in it.
    """
    main = repo_root(repo)
    common = git_common_dir(main)
    with repo_lock(common):
        before = list_worktrees(main)
        git(main, "worktree", "prune")
        after = {os.path.abspath(w.path) for w in list_worktrees(main)}
        pruned = [w.path for w in before if os.path.abspath(w.path) not in after]
        base = Path(os.path.abspath(Path(root).expanduser())) / main.name
        if base.is_dir():
            registered = {os.path.realpath(p) for p in after}
            for d in sorted(base.iterdir()):
                if d.is_dir() and not d.is_symlink() and os.path.realpath(d) not in registered:
                    try:
                        d.rmdir()  # only succeeds when empty
                        pruned.append(d)
                    except OSError:
                        pass
    return pruned
