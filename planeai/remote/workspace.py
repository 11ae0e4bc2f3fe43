"""The git side of a session on another host: the project's repo there, the task's worktree
and branch made from the same base commit as here, and the branch (or a forced removal's
unsaved work) brought back into the local repo.

No shared remote is assumed: commits travel as git bundles over the SSH connection (stdin and
stdout of one command), each incremental against what the other side is known to have:

* here -> there (:meth:`RemoteWorkspace.ship`): ``--not`` every commit the host's refs point
  at that the local repo also has;
* there -> here (:meth:`fetch_branch`, forced removals): ``--not`` the host's
  ``refs/planeai/base/*`` (shipped from here) and ``refs/planeai/fetched/*`` (fetched back
  already) that the local repo has.

Layout under the host's root (``[hosts.NAME] root``, default ``~/.planeai``)::

    repos/<slug>             a bare repo planeai owns, when [hosts.NAME] repos has no path
    worktrees/<session name> the session's worktree
    sessions/<session id>/   0700: per-session files (prompt, secrets)
    tmp/                     0700: bundles in flight
    recovery/<id>/           0700: ignored files a forced removal moved aside

Every command is an argv list run through :class:`~planeai.remote.ssh.SshHost` (each word
quoted there); the few ``sh -c`` scripts are constants here, their values positional
parameters. git runs with the same always-on hardening flags as locally (no hooks, no
fsmonitor). Git there needs 2.13 or later (``rev-parse --absolute-git-dir``).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import tarfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from planeai.config import HostSettings
from planeai.errors import GitError, WorktreeError
from planeai.git.safe_git import HARDENING_ARGS, dangerous_overrides, git, last_error_line
from planeai.git.worktrees.names import validate_branch_name, validate_worktree_name
from planeai.remote.ssh import Result, SshHost, one_line

BASE_PREFIX = "refs/planeai/base/"          # commits shipped here -> there
FETCHED_PREFIX = "refs/planeai/fetched/"    # branch tips fetched there -> here
RECOVERY_PREFIX = "refs/planeai/recovery/"  # same namespace as local forced removals

_IDENT = {"GIT_AUTHOR_NAME": "planeai", "GIT_AUTHOR_EMAIL": "planeai@localhost",
          "GIT_COMMITTER_NAME": "planeai", "GIT_COMMITTER_EMAIL": "planeai@localhost"}

# Constant scripts; every value is a positional parameter ("$1" ...), never text in the script.
# stdin -> a new private file in $1, then "$@" (a git fetch argv) FILE REFSPEC; the file goes.
_RECEIVE_BUNDLE = ('umask 077; d=$1; spec=$2; shift 2; mkdir -p -- "$d" || exit 1; '
                   'f=$(mktemp "$d/bundle.XXXXXX") || exit 1; '
                   'cat > "$f" && "$@" "$f" "$spec"; rc=$?; rm -f -- "$f"; exit $rc')
# stdin (a tar stream) -> files under $1
_UNTAR = 'mkdir -p -- "$1" && exec tar -x -p -f - -C "$1"'
# stdin -> $1 (0600) in its 0700 dir, via a temp name in the same dir and a rename
_WRITE_PRIVATE = ('umask 077; d=$(dirname -- "$1") && mkdir -p -- "$d" && chmod 700 -- "$d" '
                  '&& t=$(mktemp "$d/.planeai-tmp.XXXXXX") || exit 1; '
                  'if cat > "$t" && chmod 600 -- "$t" && mv -f -- "$t" "$1"; then exit 0; fi; '
                  'rm -f -- "$t"; exit 1')
# dirs made 0700 (each, with parents as needed)
_PRIVATE_DIRS = 'umask 077; for d; do mkdir -p -- "$d" && chmod 700 -- "$d" || exit 1; done'
# which of the dirs "$2"... under $1 hold a .git (nested repos), NUL-separated
_NESTED = ('cd -- "$1" || exit 1; shift; '
           'for d; do if [ -e "$d/.git" ]; then printf "%s\\0" "$d"; fi; done; exit 0')
# per entry "$2"... under $1: "<files> <KiB>" (what ignored entries hold)
_SIZES = ('cd -- "$1" || exit 1; shift; for e; do '
          'n=$(find "./$e" \\( -type f -o -type l \\) -print | wc -l); '
          'k=$(du -sk "./$e" | cut -f1); printf "%s %s\\n" "$n" "$k"; done')
# move entries "$3"... from $1 to $2 (0700), keeping their relative paths
_MOVE_ASIDE = ('umask 077; src=$1; dst=$2; shift 2; mkdir -p -- "$dst" && chmod 700 -- "$dst" '
               '|| exit 1; for e; do e=${e%/}; mkdir -p -- "$dst/$(dirname -- "$e")" && '
               'mv -- "$src/$e" "$dst/$e" || exit 1; done')

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


_C_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, '"': 34}


def _c_unquote(text: str) -> str:
    """A path as git prints it, C-quoted when it holds odd characters (newer gits)."""
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        return text
    raw, out, i = text[1:-1].encode("utf-8", "surrogateescape"), bytearray(), 0
    while i < len(raw):
        c = raw[i]
        if c == 92 and i + 1 < len(raw):  # backslash
            nxt = chr(raw[i + 1])
            octal = raw[i + 1:i + 4]
            if len(octal) == 3 and all(48 <= d <= 55 for d in octal):  # \ooo
                out.append(int(octal, 8) & 0xFF)
                i += 4
                continue
            out.append(_C_ESCAPES.get(nxt, raw[i + 1]))
            i += 2
            continue
        out.append(c)
        i += 1
    return out.decode("utf-8", "surrogateescape")


@dataclass
class _Losses:
    uncommitted: list[str] = field(default_factory=list)
    untracked: list[str] = field(default_factory=list)      # nested repos left out
    unpushed: int = 0
    nested: list[str] = field(default_factory=list)         # untracked dirs holding a .git
    ignored: list[str] = field(default_factory=list)        # as git lists them ("build/")
    ignored_files: int = 0
    ignored_kib: int = 0
    head: str = ""
    branch: str = ""
    env: dict[str, str] = field(default_factory=dict)   # config overrides for git there

    def summary(self) -> list[str]:
        out = []
        if self.uncommitted:
            out.append(f"{len(self.uncommitted)} uncommitted")
        if self.untracked:
            out.append(f"{len(self.untracked)} untracked")
        if self.unpushed:
            out.append(f"{self.unpushed} unpushed")
        if self.nested:
            s = "s" if len(self.nested) > 1 else ""
            out.append(f"{len(self.nested)} nested git repo{s} "
                       f"({', '.join(self.nested[:3])}{', ...' if len(self.nested) > 3 else ''})")
        if self.ignored_files:
            s = "" if self.ignored_files == 1 else "s"
            names = ", ".join(self.ignored[:3]) + (", ..." if len(self.ignored) > 3 else "")
            out.append(f"{self.ignored_files} ignored file{s} ({names}; {self.ignored_kib} KiB)")
        return out


class RemoteWorkspace:
    """The git side of sessions on one host. Cheap to make; asks the host for its home once."""

    def __init__(self, conn: SshHost, host: HostSettings) -> None:
        self.conn, self.host = conn, host
        self._root: str | None = None

    # ---- layout

    def root(self) -> str:
        """planeai's root there, absolute."""
        if self._root is None:
            r = self.conn.path(self.host.root or "~/.planeai")
            if not r.startswith("/"):
                r = f"{self.conn.home().rstrip('/')}/{r}"
            self._root = r.rstrip("/") or "/"
        return self._root

    def repo_path(self, project_name: str, project_key: str) -> str:
        """The project's repo there: the configured path, else ``<root>/repos/<slug>``."""
        configured = self.host.repos.get(project_name)
        if configured:
            return self.conn.path(configured)
        slug = re.sub(r"[^A-Za-z0-9-]+", "-", project_key).strip("-")[:40] or "project"
        digest = hashlib.sha256(project_name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        return f"{self.root()}/repos/{slug}-{digest}"

    def worktree_path(self, name: str) -> str:
        validate_worktree_name(name)
        return f"{self.root()}/worktrees/{name}"

    def session_dir(self, session_id: str) -> str:
        """``<root>/sessions/<id>``, made 0700 (and its parent) when missing."""
        if not _SAFE_ID.fullmatch(session_id):
            raise WorktreeError(f"session id {session_id!r} is not a safe directory name")
        d = f"{self.root()}/sessions/{session_id}"
        self._sh(_PRIVATE_DIRS, f"{self.root()}/sessions", d, what="making " + d)
        return d

    # ---- plumbing

    def _fail(self, what: str, err: str) -> WorktreeError:
        said = one_line(err) or "no output"
        return WorktreeError(f"host {self.host.name}: {what} failed: {said}")

    def _git(self, cwd: str, *args: str, input: str | None = None, check: bool = True,
             env: dict[str, str] | None = None, timeout: float = 600) -> Result:
        argv = ["git", *HARDENING_ARGS, "-C", cwd, *args]
        if env:
            argv = ["env", *(f"{k}={v}" for k, v in env.items()), *argv]
        r = self.conn.run(argv, input=input, timeout=timeout)
        if check and not r.ok:
            raise self._fail(f"git {' '.join(args[:2])} in {cwd}", r.err or r.out)
        return r

    def _git_argv(self, cwd: str, *args: str) -> list[str]:
        return ["git", *HARDENING_ARGS, "-C", cwd, *args]

    def _sh(self, script: str, *params: str, what: str, input: str | None = None,
            check: bool = True) -> Result:
        r = self.conn.run(["sh", "-c", script, "sh", *params], input=input, timeout=600)
        if check and not r.ok:
            raise self._fail(what, r.err or r.out)
        return r

    def _ref_shas(self, repo: str, *patterns: str) -> dict[str, str]:
        """refname -> sha of the host repo's refs under ``patterns``."""
        out = self._git(repo, "for-each-ref", "--format=%(objectname) %(refname)",
                        *patterns).out
        refs = {}
        for line in out.splitlines():
            sha, _, name = line.partition(" ")
            if _SHA.fullmatch(sha):
                refs[name] = sha
        return refs

    @staticmethod
    def _local_commits(local_repo: Path, shas) -> list[str]:
        """Those of ``shas`` that are commits in the local repo."""
        shas = sorted(set(shas))
        if not shas:
            return []
        out = git(local_repo, "cat-file", "--batch-check=%(objectname) %(objecttype)",
                  input="".join(s + "\n" for s in shas).encode()).stdout
        return [ln.split()[0] for ln in out.splitlines() if ln.endswith(" commit")]

    # ---- repo, base commit, worktree

    def ensure_repo(self, project_name: str, project_key: str) -> str:
        """The project's repo there, ready: a configured path must be a git repo already; the
        default one is made (bare) when missing."""
        path = self.repo_path(project_name, project_key)
        if self._git(path, "rev-parse", "--git-dir", check=False).ok:
            return path
        if project_name in self.host.repos and self.host.repos[project_name]:
            raise WorktreeError(f"host {self.host.name}: the repo of project {project_name!r} "
                                f"at {path} is not a git repository there")
        r = self.conn.run(["git", "init", "-q", "--bare", path], timeout=120)
        if not r.ok:
            raise self._fail(f"git init {path}", r.err)
        return path

    def ship(self, repo: str, local_repo: Path, start_point: str) -> str:
        """Make sure the host repo ``repo`` has the commit ``start_point`` names here (kept by
        ``refs/planeai/base/<sha>``); returns that sha. Sends only what the host lacks."""
        if not start_point or start_point.startswith("-"):
            raise WorktreeError(f"invalid start point {start_point!r}")
        try:
            sha = git(local_repo, "rev-parse", "--verify", "-q",
                      f"{start_point}^{{commit}}").stdout.strip()
        except GitError:
            raise WorktreeError(f"{start_point!r} is not a commit in {local_repo}") from None
        base_ref = BASE_PREFIX + sha
        # fails when the object is missing there: then (only then) send it
        if self._git(repo, "update-ref", base_ref, sha, check=False).ok:
            return sha
        have = self._local_commits(local_repo, self._ref_shas(repo).values())
        tmp_ref = f"refs/planeai/ship/{sha}-{os.getpid()}-{secrets.token_hex(4)}"
        gitdir = Path(git(local_repo, "rev-parse", "--path-format=absolute",
                          "--git-common-dir").stdout.strip())
        bundle = gitdir / f"planeai-ship-{secrets.token_hex(6)}.bundle"
        git(local_repo, "update-ref", tmp_ref, sha)
        try:
            git(local_repo, "bundle", "create", "-q", str(bundle), tmp_ref,
                *(["--not", *have] if have else []), timeout=3600)
            data = bundle.read_bytes()
        finally:
            bundle.unlink(missing_ok=True)
            git(local_repo, "update-ref", "-d", tmp_ref, check=False)
        self._receive(repo, data, f"+{tmp_ref}:{base_ref}")
        return sha

    def _receive(self, repo: str, data: bytes, refspec: str) -> None:
        fetch = self._git_argv(repo, "fetch", "-q", "--no-tags")
        rc, _, err = self.conn.run_bytes(
            ["sh", "-c", _RECEIVE_BUNDLE, "sh", f"{self.root()}/tmp", refspec, *fetch],
            input=data, check=False, timeout=3600)
        if rc != 0:
            raise self._fail(f"receiving a bundle into {repo}", err)

    def create_worktree(self, repo: str, name: str, branch: str, sha: str
                        ) -> tuple[str, bool]:
        """The worktree ``<root>/worktrees/<name>`` on ``branch`` (new, from ``sha``); one
        already there on that branch is reused: (path, created)."""
        path = self.worktree_path(name)
        validate_branch_name(branch)
        if not _SHA.fullmatch(sha):
            raise WorktreeError(f"invalid commit {sha!r}")
        found = self._find(repo, path, resolve=False)
        if found is None:
            try:
                self._add_worktree(repo, path, branch, sha)
                return path, True
            except WorktreeError:
                found = self._find(repo, path, resolve=True)  # there under another name?
                if found is None:
                    raise
        if found[1] != branch:
            raise WorktreeError(f"host {self.host.name}: {path} is a worktree on "
                                f"{found[1] or 'a detached HEAD'}, not {branch}")
        return path, False

    def _add_worktree(self, repo: str, path: str, branch: str, sha: str) -> None:
        env = self._config_overrides(repo)
        if self._git(repo, "rev-parse", "-q", "--verify", f"refs/heads/{branch}",
                     check=False).ok:
            args = [path, branch]   # the branch outlived its worktree (a restart): keep it
        else:
            args = ["-b", branch, path, sha]
        r = self._git(repo, "worktree", "add", *args, env=env, check=False)
        if not r.ok and "missing but" in r.err:   # its dir was deleted by hand
            self._git(repo, "worktree", "prune")
            r = self._git(repo, "worktree", "add", *args, env=env, check=False)
        if not r.ok:
            raise self._fail(f"git worktree add in {repo}", r.err)

    def _find(self, repo: str, path: str, *, resolve: bool) -> tuple[str, str] | None:
        """(path, branch) of the repo's worktree at ``path``; git lists real paths, so with
        ``resolve`` a path through a symlink is matched too."""
        wts = self._worktrees(repo)[1:]   # the first is the main worktree (or the bare repo)
        for wt in wts:
            if wt[0] == path:
                return wt
        if resolve:
            real = self._sh('cd -P -- "$1" 2>/dev/null && pwd -P', path, what="",
                            check=False).out.rstrip("\n")
            for wt in wts:
                if real and wt[0] == real:
                    return wt
        return None

    def _config_overrides(self, cwd: str) -> dict[str, str]:
        """GIT_CONFIG_* env that blanks command-valued keys an agent could have written into
        the repo's own config (filters, diff drivers ...), as safe_git does here: git there
        then runs no code of the agent's while planeai inspects or saves its work."""
        r = self._git(cwd, "config", "-z", "--show-scope", "--get-regexp",
                      r"^(filter|diff|merge|core|gpg|credential|remote)\.", check=False)
        if r.rc not in (0, 1):      # a git before 2.26: every key counts as the repo's own
            r = self._git(cwd, "config", "-z", "--get-regexp",
                          r"^(filter|diff|merge|core|gpg|credential|remote)\.", check=False)
            pairs = [("local", kv.split("\n", 1)[0]) for kv in r.out.split("\0") if kv]
        else:
            parts = r.out.split("\0")
            pairs = [(sc, kv.split("\n", 1)[0]) for sc, kv in zip(parts[0::2], parts[1::2])]
        env: dict[str, str] = {}
        overrides = dangerous_overrides(pairs)
        if overrides:
            env["GIT_CONFIG_COUNT"] = str(len(overrides))
            for n, (k, v) in enumerate(overrides):
                env[f"GIT_CONFIG_KEY_{n}"] = k
                env[f"GIT_CONFIG_VALUE_{n}"] = v
        return env

    def _worktrees(self, repo: str) -> list[tuple[str, str]]:
        """(path, branch) of the repo's worktrees there; branch '' when detached or bare."""
        # not -z (git >= 2.36): our paths hold no newline (config refuses control characters)
        out = self._git(repo, "worktree", "list", "--porcelain").out
        wts: list[tuple[str, str]] = []
        for rec in out.split("\n\n"):
            path = br = ""
            for line in rec.split("\n"):
                if line.startswith("worktree "):
                    path = _c_unquote(line[len("worktree "):])
                elif line.startswith("branch refs/heads/"):
                    br = line[len("branch refs/heads/"):]
            if path:
                wts.append((path, br))
        return wts

    # ---- files

    def write_files(self, dir: str, files: dict[str, bytes], mode: int = 0o644) -> None:
        """Write ``files`` (relative path -> content) under ``dir`` there in one tar stream."""
        if not dir.startswith("/"):
            raise WorktreeError(f"refusing to write under {dir!r}: not an absolute path")
        buf = io.BytesIO()
        now = time.time()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for rel, data in files.items():
                parts = rel.split("/")
                if (not rel or rel.startswith("/") or "\0" in rel
                        or any(p in ("", ".", "..") for p in parts)):
                    raise WorktreeError(f"refusing to write {rel!r}: not a plain relative path")
                info = tarfile.TarInfo(rel)
                info.size, info.mode, info.mtime = len(data), mode, now
                tar.addfile(info, io.BytesIO(data))
        rc, _, err = self.conn.run_bytes(["sh", "-c", _UNTAR, "sh", dir],
                                         input=buf.getvalue(), check=False)
        if rc != 0:
            raise self._fail(f"writing files under {dir}", err)

    def write_private(self, path: str, data: bytes) -> None:
        """``path`` there holds ``data`` (0600, its dir 0700); the data travels only on stdin
        and replaces the file in one rename."""
        if not path.startswith("/") or path.endswith("/"):
            raise WorktreeError(f"refusing to write {path!r}: not an absolute file path")
        rc, _, err = self.conn.run_bytes(["sh", "-c", _WRITE_PRIVATE, "sh", path],
                                         input=data, check=False)
        if rc != 0:
            raise self._fail(f"writing {path}", err)

    # ---- removal

    def _losses(self, path: str) -> _Losses:
        loss = _Losses(env=self._config_overrides(path))
        out = self._git(path, "status", "--porcelain=v2", "-z", "--branch",
                        "--untracked-files=all", "--ignore-submodules=dirty", env=loss.env).out
        upstream, ahead, untracked = None, None, []
        fields = out.split("\0")
        i = 0
        while i < len(fields):
            f = fields[i]
            i += 1
            if f.startswith("# branch.oid "):
                oid = f[len("# branch.oid "):]
                loss.head = "" if oid == "(initial)" else oid
            elif f.startswith("# branch.head "):
                b = f[len("# branch.head "):]
                loss.branch = "" if b == "(detached)" else b
            elif f.startswith("# branch.upstream "):
                upstream = f[len("# branch.upstream "):]
            elif f.startswith("# branch.ab "):
                ahead = int(f.split()[2].lstrip("+"))
            elif f.startswith("1 "):
                loss.uncommitted.append(f.split(" ", 8)[8])
            elif f.startswith("2 "):
                loss.uncommitted.append(f.split(" ", 9)[9])
                i += 1  # the original path follows
            elif f.startswith("u "):
                loss.uncommitted.append(f.split(" ", 10)[10])
            elif f.startswith("? "):
                untracked.append(f[2:])
        dirs = [u.rstrip("/") for u in untracked if u.endswith("/")]
        if dirs:
            out = self._sh(_NESTED, path, *dirs, what=f"looking for nested repos in {path}").out
            loss.nested = [d for d in out.split("\0") if d]
        loss.untracked = [u for u in untracked if u.rstrip("/") not in loss.nested]
        if loss.head:
            if upstream is not None and ahead is not None:
                loss.unpushed = ahead
            else:
                # safe: any other branch, remote-tracking branch, or what travelled to or from
                # the local repo (base, fetched, recovery refs)
                own = [f"--exclude={loss.branch}"] if loss.branch else []
                out = self._git(path, "rev-list", "--count", "HEAD", "--not", *own,
                                "--branches", "--remotes", f"--glob={BASE_PREFIX}*",
                                f"--glob={FETCHED_PREFIX}*", f"--glob={RECOVERY_PREFIX}*").out
                loss.unpushed = int(out.strip() or 0)
        out = self._git(path, "ls-files", "-z", "--others", "--ignored", "--exclude-standard",
                        "--directory", env=loss.env).out
        loss.ignored = [e for e in out.split("\0") if e]
        if loss.ignored:
            out = self._sh(_SIZES, path, *(e.rstrip("/") for e in loss.ignored),
                           what=f"sizing ignored files in {path}").out
            for line in out.splitlines():
                n, _, k = line.partition(" ")
                if n.strip().isdigit() and k.strip().isdigit():
                    loss.ignored_files += int(n)
                    loss.ignored_kib += int(k)
        return loss

    def removal_losses(self, path: str) -> list[str]:
        """What removing the worktree ``path`` there would lose ([] = nothing), in the words
        of the local ``removal_losses``: e.g. ["1 uncommitted", "2 untracked", "1 unpushed"].
        Commits count as safe on any other branch there, a remote-tracking branch, or a
        base/fetched/recovery ref (those the local repo has). Ignored files all count (the
        host's worktree has no copies of the local main worktree's)."""
        return self._losses(path).summary()

    def remove_worktree(self, repo: str, path: str, *, force: bool, local_repo: Path,
                        branch: str = "") -> str | None:
        """Remove the worktree ``path`` of ``repo`` there. With work to lose it refuses, unless
        ``force``: then the work is first committed (HEAD + changes + untracked files, ignored
        files moved to ``<root>/recovery/<id>/`` there) on ``refs/planeai/recovery/<id>`` there
        AND fetched into ``local_repo`` under the same name, which is returned."""
        found = self._find(repo, path, resolve=True)
        if found is None:
            raise WorktreeError(f"host {self.host.name}: {path} is not a linked worktree "
                                f"of {repo}")
        if branch and found[1] != branch:
            raise WorktreeError(f"host {self.host.name}: worktree {path} is on "
                                f"{found[1] or 'a detached HEAD'}, not {branch}")
        if not self.conn.run(["test", "-d", path]).ok:   # deleted by hand
            self._git(repo, "worktree", "prune")
            return None
        loss = self._losses(path)
        losses = loss.summary()
        recovery = None
        if losses:
            if not force:
                raise WorktreeError(f"host {self.host.name}: worktree {path} has work that "
                                    f"would be lost: {', '.join(losses)}; commit it, or remove "
                                    "with force")
            recovery = self._save(repo, path, loss, losses, local_repo)
        r = self._git(repo, "worktree", "remove", "--force", "--force", path, check=False)
        if not r.ok:
            raise self._fail(f"removing worktree {path}"
                             + (f" (its work is saved in {recovery})" if recovery else ""), r.err)
        self._git(repo, "worktree", "prune", check=False)
        return recovery

    def _save(self, repo: str, path: str, loss: _Losses, losses: list[str],
              local_repo: Path) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        rid = f"{path.rstrip('/').rsplit('/', 1)[-1]}-{stamp}-{secrets.token_hex(3)}"
        ref = RECOVERY_PREFIX + rid
        gitdir = self._git(path, "rev-parse", "--absolute-git-dir").out.strip()
        env = {**loss.env,
               "GIT_INDEX_FILE": f"{gitdir}/planeai-recovery-index-{secrets.token_hex(4)}"}
        try:
            if loss.head:
                self._git(path, "read-tree", loss.head, env=env)
            skip = [f":(exclude,literal){n}" for n in loss.nested]
            self._git(path, "add", "-A", "--", ".", *skip, env=env, timeout=3600)
            for n in loss.nested:  # their files as plain files (their own commits stay there)
                names = self._git(f"{path}/{n}", "ls-files", "-z", "--cached", "--others",
                                  "--exclude-standard").out
                listed = "".join(f"{n}/{p}\0" for p in names.split("\0") if p)
                if listed:
                    self._git(path, "update-index", "--add", "-z", "--stdin", input=listed,
                              env=env, timeout=3600)
            tree = self._git(path, "write-tree", env=env).out.strip()
        finally:
            self.conn.run(["rm", "-f", "--", env["GIT_INDEX_FILE"]])
        aside = f"{self.root()}/recovery/{rid}"
        msg = (f"planeai recovery of worktree {path} on host {self.host.name} ({rid})\n\n"
               f"Kept here: {', '.join(s for s in losses if 'ignored' not in s) or 'HEAD'}\n")
        if loss.ignored:
            msg += (f"\nIgnored files moved to {aside} on {self.host.name}:\n"
                    + "".join(f"  {e}\n" for e in loss.ignored))
        commit = self._git(path, "commit-tree", tree, *(["-p", loss.head] if loss.head else []),
                           "-m", msg, env=_IDENT).out.strip()
        self._git(repo, "update-ref", ref, commit, "")   # create only
        self._bring_back(local_repo, repo, ref, ref, commit)
        if loss.ignored:
            self._sh(_MOVE_ASIDE, path, aside, *loss.ignored,
                     what=f"moving ignored files of {path} to {aside}")
        return ref

    # ---- back to the local repo

    def _bring_back(self, local_repo: Path, repo: str, host_ref: str, local_ref: str,
                    tip: str) -> None:
        """Fetch ``host_ref`` (at ``tip``) there into ``local_ref`` here (forced), with a
        bundle that leaves out what the local repo is known to have."""
        if not self._local_commits(local_repo, [tip]):
            known = self._ref_shas(repo, BASE_PREFIX.rstrip("/"), FETCHED_PREFIX.rstrip("/"))
            have = self._local_commits(local_repo, known.values())
            rc, data, err = self.conn.run_bytes(
                self._git_argv(repo, "bundle", "create", "-", host_ref,
                               *(["--not", *have] if have else [])), check=False, timeout=3600)
            if rc != 0:
                raise self._fail(f"bundling {host_ref} in {repo}", err)
            gitdir = Path(git(local_repo, "rev-parse", "--path-format=absolute",
                              "--git-common-dir").stdout.strip())
            bundle = gitdir / f"planeai-fetch-{secrets.token_hex(6)}.bundle"
            fd = os.open(bundle, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            try:
                p = git(local_repo, "fetch", "-q", "--no-tags", "--no-write-fetch-head",
                        str(bundle), f"+{host_ref}:{local_ref}", check=False, timeout=3600)
            finally:
                bundle.unlink(missing_ok=True)
            if p.returncode != 0:
                raise WorktreeError(f"fetching {host_ref} from host {self.host.name} into "
                                    f"{local_repo} failed: {last_error_line(p.stderr)}")
        else:
            git(local_repo, "update-ref", local_ref, tip)

    def fetch_branch(self, local_repo: Path, repo: str, branch: str) -> str:
        """Bring ``branch`` of the host repo into the local repo as ``refs/heads/<branch>``
        (created, or fast-forwarded; never moved otherwise); returns its sha."""
        validate_branch_name(branch)
        head = f"refs/heads/{branch}"
        tip = self._ref_shas(repo, head).get(head)
        if tip is None:
            raise WorktreeError(f"host {self.host.name}: no branch {branch} in {repo}")
        old = git(local_repo, "rev-parse", "-q", "--verify", f"{head}^{{commit}}",
                  check=False).stdout.strip()
        if old != tip:
            incoming = f"refs/planeai/incoming/{secrets.token_hex(6)}"
            self._bring_back(local_repo, repo, head, incoming, tip)
            try:
                if old and git(local_repo, "merge-base", "--is-ancestor", old, tip,
                               check=False).returncode != 0:
                    raise WorktreeError(
                        f"local branch {branch} has commits that host {self.host.name}'s "
                        f"{branch} lacks; not replacing it (merge or rename one of them)")
                for line in git(local_repo, "worktree", "list", "--porcelain").stdout.splitlines():
                    if old and line == f"branch {head}":
                        raise WorktreeError(f"local branch {branch} is checked out in a "
                                            "worktree here; not moving it under it")
                p = git(local_repo, "update-ref", head, tip, old, check=False)
                if p.returncode != 0:
                    raise WorktreeError(f"could not update local branch {branch}: "
                                        f"{last_error_line(p.stderr)}")
            finally:
                git(local_repo, "update-ref", "-d", incoming, check=False)
        # the host now knows the local repo has it: removal there counts it as safe, and
        # the next bundle leaves it out
        self._git(repo, "update-ref", FETCHED_PREFIX + branch, tip, check=False)
        return tip
