"""Removing worktrees: a plain removal refuses over work it would lose; a forced one saves it
first (recovery ref, nested repos' refs, ignored files moved to a 0700 dir); prune drops the
worktrees of merged branches (see the package doc)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from planeai.errors import GitError, WorktreeError
from planeai.git.safe_git import (
    default_branch,
    git,
    git_common_dir,
    last_error_line,
    repo_root,
)
from planeai.git.worktrees.registry import (
    _find,
    _git_retry,
    _ref_oid,
    _same_path,
    list_worktrees,
    repo_lock,
)
from planeai.git.worktrees.state import IgnoredLoss, _Losses, _losses

log = logging.getLogger("planeai.git")

RECOVERY_PREFIX = "refs/planeai/recovery/"
RECOVERY_NESTED_PREFIX = "refs/planeai/recovery-nested/"


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
    for entry in sorted(entries):
        rel = entry.rstrip("/")
        if any(rel.startswith(m + "/") for m in moved):
            continue  # inside a directory moved already (git lists `.claude/` and its parts)
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
