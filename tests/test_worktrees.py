"""planeai.git.safe_git and planeai.git.worktrees against real git repos in tmp_path."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from planeai.errors import GitError, WorktreeError
from planeai.git.worktrees import create as wt_create
from planeai.git.safe_git import default_branch, git, repo_root
from planeai.git.worktrees import (
    Worktree, branch_for, ensure_worktree, list_worktrees, prune_worktrees, removal_losses,
    remove_worktree,
    slugify, validate_branch_name, worktree_state,
)

ROOT = Path(__file__).resolve().parent.parent
IDENT = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@planeai.invalid",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@planeai.invalid",
}


@pytest.fixture(autouse=True)
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in IDENT.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    gc = tmp_path / "global.gitconfig"
    gc.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gc))


def raw(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Plain, unhardened git (the way a careless tool would run it)."""
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=check,
                          env={**os.environ, **IDENT})


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True)
    raw(path, "init", "-q", "-b", "main")
    for name, text in (files or {"README.md": "hello\n", ".gitignore": ".env\n*.log\n"}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    raw(path, "add", "-A")
    raw(path, "commit", "-q", "-m", "init")
    return path


def commit(wt: Path, name: str, text: str, msg: str = "change") -> str:
    (wt / name).write_text(text)
    raw(wt, "add", name)
    raw(wt, "commit", "-q", "-m", msg)
    return raw(wt, "rev-parse", "HEAD").stdout.strip()


def branches(repo: Path) -> set[str]:
    out = raw(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").stdout
    return set(out.split())


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "proj")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "worktrees"


# --------------------------------------------------------------------------- names

def test_slugify_basic() -> None:
    assert slugify("Fix the Login bug!") == "fix-the-login-bug"
    assert slugify("Ünïcödé café") == "unicode-cafe"
    assert slugify("   ") == ""
    long = slugify("word " * 30, max_len=20)
    assert len(long) <= 20 and not long.endswith("-") and long.startswith("word-word")


HOSTILE = [
    "$(touch {c})", "`touch {c}`", "a; touch {c}", "'; touch {c}; '", '" && touch {c} "',
    "line1\ntouch {c}\nline3", "--upload-pack=touch {c}", "-b evil", "../../etc/passwd",
    "refs/heads/../x.lock", "@{{-1}}", "~^:?*[\\", "", "....", "HEAD",
]


@pytest.mark.parametrize("title", HOSTILE)
def test_hostile_titles_give_valid_branches_and_run_nothing(
        title: str, repo: Path, root: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    canary = tmp_path / "canary"
    monkeypatch.chdir(tmp_path)
    title = title.format(c=canary)
    slug = slugify(title)
    assert all(c in "abcdefghijklmnopqrstuvwxyz0123456789-" for c in slug)
    assert not slug.startswith("-") and not slug.endswith("-")
    branch = branch_for("PLA-1", title)
    assert raw(repo, "check-ref-format", "--branch", branch, check=False).returncode == 0
    wt = ensure_worktree(repo, root, "PLA-1", branch)
    assert wt.created and wt.branch == branch
    assert raw(wt.path, "symbolic-ref", "--short", "HEAD").stdout.strip() == branch
    assert not canary.exists()
    assert not (tmp_path / "X").exists()


def test_branch_for_format_and_bad_keys() -> None:
    assert branch_for("PLA-12", "Add dark mode") == "planeai/PLA-12-add-dark-mode"
    assert branch_for("PLA-3", "!!!") == "planeai/PLA-3"
    for key in ("", "-x", "PLA 1", "PLA/1", "$(x)", "a..b", "x" * 80):
        with pytest.raises(WorktreeError, match="task key"):
            branch_for(key, "t")


BAD_BRANCHES = {
    "": "empty", "-x": "starts with '-'", "HEAD": "reserved", "@": "reserved",
    "a b": "space", "a~1": "'~'", "a^": "'\\^'", "a:b": "':'", "a?": "'\\?'", "a*": "'\\*'",
    "a[b": "'\\['", "a\\b": "backslash", "a..b": "'\\.\\.'", "a@{b": "'@\\{'", "/a": "'/'",
    "a/": "'/'", "a//b": "'//'", "a.": "ends with '.'", ".a": "starts with '.'",
    "a/.b": "starts with '.'", "a.lock": ".lock", "a/b.lock/c": ".lock", "a\nb": "control",
    "a\x7fb": "control", "a\tb": "control",
}


@pytest.mark.parametrize("name,rule", BAD_BRANCHES.items())
def test_validate_branch_name_rejects_with_rule(name: str, rule: str, tmp_path: Path) -> None:
    with pytest.raises(WorktreeError, match=rule):
        validate_branch_name(name)
    if name in ("@", "HEAD"):  # planeai is stricter: git resolves these as revisions
        return
    # git agrees that the name is bad
    assert subprocess.run(["git", "check-ref-format", "--branch", name], cwd=tmp_path,
                          capture_output=True).returncode != 0


@pytest.mark.parametrize("name", ["main", "planeai/PLA-1-x", "a/b/c", "feature.v2", "x@y",
                                  "a-b_c", "ü-branch", "a.lock-free"])
def test_validate_branch_name_accepts_what_git_accepts(name: str, tmp_path: Path) -> None:
    validate_branch_name(name)
    assert subprocess.run(["git", "check-ref-format", "--branch", name], cwd=tmp_path,
                          capture_output=True).returncode == 0


# --------------------------------------------------------------------------- safe_git

def test_git_runner_raises_one_line_giterror(repo: Path) -> None:
    with pytest.raises(GitError) as ei:
        git(repo, "rev-parse", "--verify", "no-such-ref")
    assert "\n" not in str(ei.value) and "rev-parse" in str(ei.value)
    assert git(repo, "rev-parse", "--verify", "nope", check=False).returncode != 0
    with pytest.raises(GitError, match="does not exist"):
        git(repo / "missing", "status")
    with pytest.raises(GitError, match="timed out"):
        git(repo, "hash-object", "--stdin", timeout=0.000001, input=b"x")
    head = raw(repo, "rev-parse", "HEAD").stdout.strip()
    assert git(repo, "rev-parse", "HEAD").stdout.strip() == head
    assert git(repo, "hash-object", "--stdin", input=b"x\n").stdout.strip() == \
        "587be6b4c3f93f93c489c0111bba5596147a26cb"


def test_git_runner_ignores_inherited_git_dir(repo: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    other = make_repo(tmp_path / "other", {"o": "o"})
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    assert Path(git(repo, "rev-parse", "--show-toplevel").stdout.strip()) == repo


def test_repo_root_and_default_branch(repo: Path, root: Path, tmp_path: Path) -> None:
    wt = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1")
    assert repo_root(wt.path) == repo
    (wt.path / "sub").mkdir()
    assert repo_root(wt.path / "sub") == repo
    assert repo_root(repo) == repo
    assert default_branch(wt.path) == "main"  # the main worktree's branch
    # a clone: origin/HEAD wins
    remote = make_repo(tmp_path / "remote", {"f": "1"})
    raw(remote, "branch", "-m", "main", "trunk")
    clone = tmp_path / "clone"
    raw(tmp_path, "clone", "-q", str(remote), str(clone))
    raw(clone, "checkout", "-q", "-b", "elsewhere")
    assert default_branch(clone) == "trunk"
    # detached HEAD, no origin: falls back to main/master
    raw(repo, "checkout", "-q", "--detach")
    assert default_branch(repo) == "main"
    raw(repo, "branch", "-m", "main", "master")
    assert default_branch(repo) == "master"
    raw(repo, "branch", "-m", "master", "other")
    with pytest.raises(GitError, match="default branch"):
        default_branch(repo)


CANARY_SCRIPT = '#!/bin/sh\ntouch "{dir}/{name}"\n{tail}\n'


def _hostile_repo(base: Path) -> tuple[Path, Path]:
    """A repo whose .git/config and attributes try every code-running knob we know of."""
    canaries = base / "canaries"
    canaries.mkdir(parents=True)
    repo = make_repo(base / "repo", {"a.txt": "hello\n", "b.dat": "data\n", "c.bin": "bin\n",
                                     "plain.md": "plain\n",
                                     ".gitattributes": "*.txt filter=evil diff=evil\n"
                                                       "*.dat filter=evilproc\n"
                                                       "*.bin diff=evilcmd\n"})
    bin_ = base / "bin"
    bin_.mkdir()
    hooks = base / "hooks"
    hooks.mkdir()

    def script(path: Path, name: str, tail: str = "exit 0") -> str:
        path.write_text(CANARY_SCRIPT.format(dir=canaries, name=name, tail=tail))
        path.chmod(0o755)
        return str(path)

    for hook in ("post-checkout", "pre-commit", "post-commit", "post-index-change",
                 "reference-transaction", "post-rewrite", "pre-auto-gc"):
        script(hooks / hook, f"hook-{hook}")
    cfg = {
        "core.fsmonitor": script(bin_ / "fsmonitor", "fsmonitor", "exit 1"),
        "core.hooksPath": str(hooks),
        "diff.external": script(bin_ / "extdiff", "diff-external"),
        "filter.evil.clean": script(bin_ / "clean", "filter-clean", "cat"),
        "filter.evil.smudge": script(bin_ / "smudge", "filter-smudge", "cat"),
        "filter.evilproc.process": script(bin_ / "process", "filter-process", "exit 1"),
        "diff.evil.textconv": script(bin_ / "textconv", "textconv", 'cat "$1"'),
        "diff.evilcmd.command": script(bin_ / "diffcmd", "diff-command"),
    }
    for k, v in cfg.items():
        raw(repo, "config", "--local", k, v)
    return repo, canaries


def _exercise(run, repo: Path, wt_path: Path) -> None:
    """status, diff, add, write-tree/commit-tree, worktree add + checkout, through ``run``."""
    for f in ("a.txt", "b.dat", "c.bin", "plain.md"):
        (repo / f).write_text("changed " + f + "\n")
    run(repo, "status", "--porcelain")
    run(repo, "diff", "--", "plain.md")
    run(repo, "-c", "core.quotePath=false", "diff", "--", "plain.md")  # options before the verb
    run(repo, "diff")
    run(repo, "diff", "--", "c.bin")
    run(repo, "add", "-A")
    tree = run(repo, "write-tree").stdout.strip()
    if tree:
        run(repo, "commit-tree", tree, "-p", "HEAD", "-m", "x")
    run(repo, "diff", "--cached")
    run(repo, "log", "-p", "-1")
    run(repo, "show", "HEAD")
    run(repo, "worktree", "add", "-q", "--no-track", "-b", "wt", str(wt_path), "HEAD")
    if wt_path.is_dir():  # plain git dies in the failing process filter before making it
        run(wt_path, "status")
        run(wt_path, "checkout", "-q", "-f", "HEAD", "--", ".")


def test_control_plain_git_runs_the_hostile_config(tmp_path: Path) -> None:
    """Proves the canaries work: unhardened git creates them (so the next test can fail)."""
    repo, canaries = _hostile_repo(tmp_path)
    _exercise(lambda cwd, *a: raw(cwd, *a, check=False), repo, tmp_path / "wt")
    made = {p.name for p in canaries.iterdir()}
    for expected in ("fsmonitor", "hook-post-index-change", "hook-reference-transaction",
                     "filter-clean", "filter-smudge", "filter-process", "diff-command", "textconv",
                     "diff-external"):
        assert expected in made, (expected, made)


def test_hardened_runner_creates_no_canary(tmp_path: Path) -> None:
    repo, canaries = _hostile_repo(tmp_path)
    _exercise(lambda cwd, *a: git(cwd, *a), repo, tmp_path / "wt")
    assert sorted(p.name for p in canaries.iterdir()) == []
    # and planeai's own operations on that repo stay clean too
    wt = ensure_worktree(repo, tmp_path / "root", "PLA-1", "planeai/PLA-1")
    (wt.path / "a.txt").write_text("edited\n")
    (wt.path / "new.txt").write_text("new\n")
    worktree_state(wt.path)
    ref = remove_worktree(repo, wt.path, force=True)
    assert ref and git(repo, "show", f"{ref}:new.txt").stdout == "new\n"
    assert sorted(p.name for p in canaries.iterdir()) == []


def test_hardened_runner_handles_odd_driver_names_and_includes(tmp_path: Path) -> None:
    canaries = tmp_path / "canaries"
    canaries.mkdir()
    repo = make_repo(tmp_path / "repo", {"a.txt": "x\n",
                                         ".gitattributes": '*.txt filter="E=v il"\n'})
    s = tmp_path / "clean"
    s.write_text(CANARY_SCRIPT.format(dir=canaries, name="odd", tail="cat"))
    s.chmod(0o755)
    raw(repo, "config", "--local", "filter.E=v il.clean", str(s))
    raw(repo, "config", "--local", "include.path", str(tmp_path / "inc.cfg"))
    (tmp_path / "inc.cfg").write_text(f'[filter "x"]\n\tclean = {s}\n')
    (repo / ".gitattributes").write_text('*.txt filter="E=v il"\n*.md filter=x\n')
    (repo / "a.txt").write_text("y\n")
    (repo / "b.md").write_text("y\n")
    git(repo, "add", "-A")
    assert list(canaries.iterdir()) == []
    raw(repo, "add", "-A")
    assert list(canaries.iterdir()) != []  # control: plain git does run it


def test_hardened_runner_covers_per_worktree_config(repo: Path, root: Path,
                                                    tmp_path: Path) -> None:
    canaries = tmp_path / "canaries"
    canaries.mkdir()
    s = tmp_path / "clean"
    s.write_text(CANARY_SCRIPT.format(dir=canaries, name="wtcfg", tail="cat"))
    s.chmod(0o755)
    wt = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1").path
    raw(repo, "config", "extensions.worktreeConfig", "true")
    raw(wt, "config", "--worktree", "filter.w.clean", str(s))
    (wt / ".gitattributes").write_text("*.w filter=w\n")
    (wt / "a.w").write_text("x\n")
    git(wt, "add", "-A")
    worktree_state(wt)
    assert list(canaries.iterdir()) == []
    (wt / "a.w").write_text("y\n")
    raw(wt, "add", "-A")
    assert [p.name for p in canaries.iterdir()] == ["wtcfg"]  # control


def test_hardened_runner_keeps_global_filters(tmp_path: Path) -> None:
    """Drivers from the user's global config (e.g. git-lfs) are trusted and still run."""
    canaries = tmp_path / "canaries"
    canaries.mkdir()
    repo = make_repo(tmp_path / "repo", {"a.txt": "x\n", ".gitattributes": "*.txt filter=g\n"})
    s = tmp_path / "clean"
    s.write_text(CANARY_SCRIPT.format(dir=canaries, name="global", tail="cat"))
    s.chmod(0o755)
    Path(os.environ["GIT_CONFIG_GLOBAL"]).write_text(f'[filter "g"]\n\tclean = {s}\n')
    (repo / "a.txt").write_text("y\n")
    git(repo, "add", "-A")
    assert [p.name for p in canaries.iterdir()] == ["global"]


# --------------------------------------------------------------------------- creation

def test_create_then_reuse(repo: Path, root: Path) -> None:
    wt = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1-x")
    assert wt.created and wt.path == root / "proj" / "PLA-1"
    assert (wt.path / "README.md").read_text() == "hello\n"
    assert wt.head == raw(repo, "rev-parse", "main").stdout.strip()
    assert worktree_state(wt.path).clean
    # --no-track: no upstream config written
    assert raw(repo, "config", "--get", "branch.planeai/PLA-1-x.merge", check=False).returncode == 1
    again = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1-x")
    assert not again.created and again.path == wt.path and again.head == wt.head
    with pytest.raises(WorktreeError, match="not on planeai/other"):
        ensure_worktree(repo, root, "PLA-1", "planeai/other")
    with pytest.raises(WorktreeError, match="already checked out"):
        ensure_worktree(repo, root, "PLA-2", "planeai/PLA-1-x")
    with pytest.raises(WorktreeError, match="invalid worktree name"):
        ensure_worktree(repo, root, "../x", "planeai/x")
    with pytest.raises(WorktreeError, match="invalid branch name"):
        ensure_worktree(repo, root, "PLA-9", "bad..name")
    with pytest.raises(WorktreeError, match="not a commit"):
        ensure_worktree(repo, root, "PLA-9", "planeai/PLA-9", base="nope")
    assert "planeai/PLA-9" not in branches(repo)


def test_create_from_base_and_attach_existing_branch(repo: Path, root: Path) -> None:
    first = raw(repo, "rev-parse", "HEAD").stdout.strip()
    commit(repo, "later.txt", "later")
    wt = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1", base=first)
    assert wt.head == first and not (wt.path / "later.txt").exists()
    raw(repo, "branch", "feature")
    wt2 = ensure_worktree(repo, root, "PLA-2", "feature")
    assert wt2.created and (wt2.path / "later.txt").exists()


def test_hand_deleted_worktree_is_pruned_and_recreated(repo: Path, root: Path) -> None:
    wt = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1")
    commit(wt.path, "work.txt", "w")
    import shutil
    shutil.rmtree(wt.path)
    again = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1")
    assert again.created and (again.path / "work.txt").read_text() == "w"


def test_existing_nonempty_dir_is_refused(repo: Path, root: Path) -> None:
    (root / "proj" / "PLA-1").mkdir(parents=True)
    (root / "proj" / "PLA-1" / "mine").write_text("keep")
    with pytest.raises(WorktreeError, match="exists and is not a worktree"):
        ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1")
    assert (root / "proj" / "PLA-1" / "mine").read_text() == "keep"
    assert "planeai/PLA-1" not in branches(repo)


def test_list_worktrees(repo: Path, root: Path) -> None:
    a = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1")
    raw(repo, "worktree", "add", "-q", "--detach", str(root / "det"))
    raw(repo, "worktree", "lock", "--reason", "busy", str(root / "det"))
    wts = list_worktrees(a.path)
    assert wts[0].path == repo and wts[0].branch == "main"
    by_path = {w.path: w for w in wts[1:]}
    assert set(by_path) == {a.path, root / "det"}
    assert by_path[a.path].branch == "planeai/PLA-1" and by_path[a.path].locked is None
    det = by_path[root / "det"]
    assert det.detached and det.branch == "" and det.locked == "busy"
    assert all(isinstance(w, Worktree) and len(w.head) == 40 for w in wts)


def _orphans(repo: Path) -> set[str]:
    used = {w.branch for w in list_worktrees(repo)}
    return branches(repo) - used


def test_twelve_threads_create_at_once(repo: Path, root: Path) -> None:
    barrier = threading.Barrier(12)

    def make(i: int) -> Worktree:
        barrier.wait()
        return ensure_worktree(repo, root, f"PLA-{i}", f"planeai/PLA-{i}")

    with ThreadPoolExecutor(12) as ex:
        results = list(ex.map(make, range(1, 13)))
    assert all(r.created for r in results)
    assert branches(repo) == {"main"} | {f"planeai/PLA-{i}" for i in range(1, 13)}
    assert _orphans(repo) == set()
    assert len(list_worktrees(repo)) == 13
    assert all((r.path / "README.md").exists() for r in results)


def test_twelve_processes_create_at_once(repo: Path, root: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    code = (
        "import sys, os, time\n"
        "from pathlib import Path\n"
        "from planeai.git.worktrees import ensure_worktree\n"
        "go = Path(sys.argv[4])\n"
        "while not go.exists(): time.sleep(0.001)\n"
        "w = ensure_worktree(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3],\n"
        "                    'planeai/' + sys.argv[3])\n"
        "print(w.created)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(repo), str(root), f"PLA-{i}",
                               str(go)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(1, 13)]
    go.write_text("go")  # release them together
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 12, [o[1] for o in outs]
    assert all(o[0].strip() == "True" for o in outs)
    assert _orphans(repo) == set()
    assert branches(repo) == {"main"} | {f"planeai/PLA-{i}" for i in range(1, 13)}


def test_failed_registration_leaves_no_orphan_branch(repo: Path, root: Path,
                                                     tmp_path: Path) -> None:
    # Make `git worktree add` fail *after* it created the branch: .git/worktrees is a file.
    (repo / ".git" / "worktrees").write_text("not a dir")
    # control: plain git leaves the orphan branch behind
    raw(repo, "worktree", "add", "-q", "-b", "control", str(tmp_path / "c"), "main", check=False)
    assert "control" in branches(repo)
    raw(repo, "branch", "-D", "control")
    with pytest.raises(WorktreeError, match="worktree add"):
        ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1")
    assert branches(repo) == {"main"}
    assert not (root / "proj" / "PLA-1").exists()


def test_failed_checkout_leaves_nothing(repo: Path, root: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(target: Path) -> None:
        assert (target / ".git").exists()  # registered at this point
        raise GitError("checkout failed: disk full")

    monkeypatch.setattr(wt_create, "_populate", boom)
    with pytest.raises(GitError, match="disk full"):
        ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1")
    assert branches(repo) == {"main"}
    assert not (root / "proj" / "PLA-1").exists()
    assert len(list_worktrees(repo)) == 1
    # an existing branch that failed to attach is kept (it was not ours to delete)
    raw(repo, "branch", "keep")
    with pytest.raises(GitError):
        ensure_worktree(repo, root, "PLA-2", "keep")
    assert "keep" in branches(repo)


# --------------------------------------------------------------------------- copy_ignored

def test_copy_ignored_only_copies_ignored_files(repo: Path, root: Path) -> None:
    (repo / ".env").write_text("SECRET=1\n")
    (repo / "app.log").write_text("log\n")
    (repo / "notes.txt").write_text("untracked but not ignored\n")
    (repo / "cfg").mkdir()
    (repo / "cfg" / "local.env").write_text("x")  # not ignored
    wt = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1",
                         copy_ignored=[".env", "*.log", "notes.txt", "README.md", "cfg/*",
                                       "missing"])
    assert sorted(wt.copied) == [".env", "app.log"]
    assert (wt.path / ".env").read_text() == "SECRET=1\n"
    assert not (wt.path / "notes.txt").exists() and not (wt.path / "cfg").exists()
    assert (wt.path / "README.md").read_text() == "hello\n"
    # only on creation: reuse does not copy again
    (wt.path / ".env").unlink()
    again = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1", copy_ignored=[".env"])
    assert not again.created and not (wt.path / ".env").exists()


def test_copy_ignored_never_overwrites(repo: Path, root: Path) -> None:
    raw(repo, "checkout", "-q", "-b", "with-env")
    (repo / ".env").write_text("TRACKED\n")
    raw(repo, "add", "-f", ".env")
    raw(repo, "commit", "-q", "-m", "track env")
    raw(repo, "checkout", "-q", "main")
    (repo / ".env").write_text("LOCAL\n")
    wt = ensure_worktree(repo, root, "PLA-1", "with-env", copy_ignored=[".env"])
    assert (wt.path / ".env").read_text() == "TRACKED\n" and wt.copied == []


@pytest.mark.parametrize("pat", ["../outside", "/etc/passwd", "a/../../x", "~/.ssh/id_rsa", ".",
                                 ""])
def test_copy_ignored_refuses_escaping_paths(pat: str, repo: Path, root: Path) -> None:
    with pytest.raises(WorktreeError, match="inside the repository"):
        ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1", copy_ignored=[pat])
    assert "planeai/PLA-1" not in branches(repo)


def test_copy_ignored_refuses_symlink_escape(repo: Path, root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("outside")
    (repo / ".env").symlink_to(secret)
    with pytest.raises(WorktreeError, match="outside the repository"):
        ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1", copy_ignored=[".env"])
    assert "planeai/PLA-1" not in branches(repo) and not (root / "proj" / "PLA-1").exists()


def test_copy_ignored_refuses_tracked_symlink_dir_in_target(repo: Path, root: Path,
                                                            tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    raw(repo, "checkout", "-q", "-b", "linky")
    (repo / "conf").symlink_to(outside)
    raw(repo, "add", "conf")
    raw(repo, "commit", "-q", "-m", "link")
    raw(repo, "checkout", "-q", "main")
    (repo / "conf").mkdir()
    (repo / ".gitignore").write_text(".env\n*.log\nconf/\n")
    (repo / "conf" / "x.log").write_text("x")
    with pytest.raises(WorktreeError, match="outside the worktree"):
        ensure_worktree(repo, root, "PLA-1", "linky", copy_ignored=["conf/x.log"])
    assert list(outside.iterdir()) == []


# --------------------------------------------------------------------------- state & removal

def test_worktree_state_counts(repo: Path, root: Path, tmp_path: Path) -> None:
    wt = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1").path
    s = worktree_state(wt)
    assert s.clean and s.branch == "planeai/PLA-1"
    (wt / "README.md").write_text("changed\n")
    (wt / "n1").write_text("1")
    (wt / "d").mkdir()
    (wt / "d" / "n2").write_text("2")
    (wt / "x.log").write_text("ignored")
    s = worktree_state(wt)
    assert s.uncommitted == ["README.md"] and sorted(s.untracked) == ["d/n2", "n1"]
    assert s.unpushed == 0 and not s.clean
    raw(wt, "add", "-A")
    raw(wt, "commit", "-q", "-m", "c")
    s = worktree_state(wt)
    assert s.uncommitted == [] and s.untracked == [] and s.unpushed == 1  # vs main
    raw(wt, "mv", "n1", "n1-renamed")
    assert worktree_state(wt).uncommitted == ["n1-renamed"]


def test_unpushed_with_remote_and_upstream(tmp_path: Path, root: Path) -> None:
    remote = make_repo(tmp_path / "remote")
    clone = tmp_path / "clone"
    raw(tmp_path, "clone", "-q", str(remote), str(clone))
    wt = ensure_worktree(clone, root, "PLA-1", "planeai/PLA-1").path
    commit(wt, "a", "1")
    commit(wt, "b", "2")
    assert worktree_state(wt).unpushed == 2  # not on any remote-tracking branch
    raw(wt, "push", "-q", "-u", "origin", "planeai/PLA-1")
    assert worktree_state(wt).unpushed == 0
    commit(wt, "c", "3")
    assert worktree_state(wt).unpushed == 1  # ahead of its upstream


@pytest.mark.parametrize("make_dirty,reason", [
    (lambda wt: (wt / "README.md").write_text("edit\n"), "1 uncommitted"),
    (lambda wt: (wt / "new.txt").write_text("new\n"), "1 untracked"),
    (lambda wt: commit(wt, "c.txt", "c"), "1 unpushed"),
    (lambda wt: (wt / ".env").write_text("AGENT_MADE=1\n"), r"1 ignored file.*\.env"),
])
def test_remove_refuses_when_work_would_be_lost(make_dirty, reason: str, repo: Path,
                                                root: Path) -> None:
    wt = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1").path
    assert removal_losses(wt) == []
    make_dirty(wt)
    assert len(removal_losses(wt)) == 1 and re.search(reason, removal_losses(wt)[0])
    with pytest.raises(WorktreeError, match=reason):
        remove_worktree(repo, wt)
    assert wt.is_dir() and len(list_worktrees(repo)) == 2


def test_remove_clean_worktree_and_merged_branch(repo: Path, root: Path, tmp_path: Path) -> None:
    # copies of the main worktree's ignored files are nobody's work: no ref, no recovery dir
    (repo / ".gitignore").write_text(".env\n*.log\nnode_modules/\n")
    raw(repo, "commit", "-q", "-am", "ignore node_modules")
    (repo / ".env").write_text("SAME\n")
    (repo / "node_modules" / "pkg").mkdir(parents=True)
    (repo / "node_modules" / "pkg" / "index.js").write_text("module.exports = 1\n")
    wt = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1",
                         copy_ignored=[".env", "node_modules"]).path
    (wt / "build.log").write_text("same\n")
    (repo / "build.log").write_text("same\n")  # identical content (other mtime)
    commit(wt, "c.txt", "c")
    raw(repo, "merge", "-q", "--ff-only", "planeai/PLA-1")  # now merged and pushed nowhere
    assert removal_losses(wt) == []
    rec = tmp_path / "recovery"
    assert remove_worktree(repo, wt, delete_branch=True, recovery_dir=rec) is None
    assert not wt.exists() and branches(repo) == {"main"} and not rec.exists()
    assert raw(repo, "for-each-ref", "refs/planeai").stdout == ""
    assert (repo / ".env").read_text() == "SAME\n"


def test_remove_refuses_unmerged_branch_deletion(repo: Path, root: Path, tmp_path: Path) -> None:
    remote = make_repo(tmp_path / "remote")
    clone = tmp_path / "clone"
    raw(tmp_path, "clone", "-q", str(remote), str(clone))
    wt = ensure_worktree(clone, root, "PLA-1", "planeai/PLA-1").path
    commit(wt, "c.txt", "c")
    raw(wt, "push", "-q", "origin", "planeai/PLA-1")  # pushed, so nothing unpushed
    with pytest.raises(WorktreeError, match="not merged"):
        remove_worktree(clone, wt, delete_branch=True)
    assert wt.is_dir() and "planeai/PLA-1" in branches(clone)
    assert remove_worktree(clone, wt) is None  # keeping the branch is fine
    assert "planeai/PLA-1" in branches(clone)


def test_forced_removal_saves_recovery_ref(repo: Path, root: Path, tmp_path: Path) -> None:
    wt = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1").path
    unpushed = commit(wt, "committed.txt", "in a commit\n")
    (wt / "README.md").write_text("uncommitted edit\n")
    (wt / "untracked.txt").write_text("untracked content\n")
    raw(wt, "rm", "-q", "committed.txt")  # a staged deletion
    (wt / "committed.txt").write_text("recreated, untracked now\n")
    (wt / ".env").write_text("AGENT_SECRET=2\n")  # ignored, not in main
    (wt / "x.log").write_bytes(b"a" * (2 << 20))  # ignored, too big to keep
    rec = tmp_path / "recovery"
    ref = remove_worktree(repo, wt, force=True, delete_branch=True, recovery_dir=rec)
    assert ref and ref.startswith("refs/planeai/recovery/PLA-1-") and ref.endswith("Z")
    assert not wt.exists() and branches(repo) == {"main"}
    show = lambda p: raw(repo, "show", f"{ref}:{p}").stdout  # noqa: E731
    assert show("README.md") == "uncommitted edit\n"
    assert show("untracked.txt") == "untracked content\n"
    assert show("committed.txt") == "recreated, untracked now\n"
    # ignored files are moved next to the ref's name, not stored in git objects
    for p in (".env", "x.log"):
        assert raw(repo, "cat-file", "-e", f"{ref}:{p}", check=False).returncode != 0
    kept = rec / "proj" / ref.rsplit("/", 1)[1]
    assert ref.ignored_dir == kept and (kept / ".env").read_text() == "AGENT_SECRET=2\n"
    assert (kept / "x.log").stat().st_size == 2 << 20
    assert raw(repo, "rev-parse", f"{ref}^").stdout.strip() == unpushed
    # the user's real index was not touched by the temporary index
    assert len(list_worktrees(repo)) == 1


def test_forced_removal_twice_same_second_gets_unique_refs(repo: Path, root: Path) -> None:
    refs = []
    for _ in range(2):
        wt = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1").path
        (wt / "f").write_text(str(len(refs)))
        refs.append(remove_worktree(repo, wt, force=True))
    assert len(set(refs)) == 2 and all(refs)


def test_remove_rejects_main_and_unknown(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(WorktreeError, match="main worktree"):
        remove_worktree(repo, repo, force=True)
    with pytest.raises(WorktreeError, match="not a worktree"):
        remove_worktree(repo, tmp_path / "nowhere")


def test_prune_worktrees(repo: Path, root: Path) -> None:
    import shutil
    gone = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1").path
    busy = ensure_worktree(repo, root, "PLA-2", "planeai/PLA-2").path
    (busy / "work.txt").write_text("in progress")
    shutil.rmtree(gone)
    (root / "proj" / "empty-leftover").mkdir()
    (root / "proj" / "stray").mkdir()
    (root / "proj" / "stray" / "file").write_text("someone's")
    pruned = prune_worktrees(repo, root)
    assert sorted(pruned) == sorted([gone, root / "proj" / "empty-leftover"])
    assert [w.path for w in list_worktrees(repo)] == [repo, busy]
    assert (busy / "work.txt").exists() and (root / "proj" / "stray" / "file").exists()
    assert "planeai/PLA-1" in branches(repo)  # the branch (work) is kept
    assert prune_worktrees(repo, root) == []


# --------------------------------------------------------------------------- forced removal:
# nested repos and ignored files (issue 10, item 10)

def _nested_repo(path: Path, commits: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    raw(path, "init", "-q", "-b", "main")
    for name, text in commits.items():
        commit(path, name, text, msg=f"add {name}")
    return path


def _restore_files(repo: Path, root: Path, ref: str, name: str) -> Path:
    """What the README says: a fresh worktree, then `git restore --source=REF`."""
    new = ensure_worktree(repo, root, name, f"planeai/{name}").path
    raw(new, "restore", f"--source={ref}", "--worktree", "--", ".")
    return new


def _restore_nested(repo: Path, ref_prefix: str, into: Path) -> None:
    """What the README says: init, fetch the saved refs back, HEAD on its branch, reset."""
    raw(into, "init", "-q")
    raw(into, "fetch", "-q", "--update-head-ok", str(repo), f"+{ref_prefix}/refs/*:refs/*")
    raw(into, "symbolic-ref", "HEAD", "refs/heads/main")
    raw(into, "reset", "-q")


def test_forced_removal_keeps_a_nested_repos_files_and_commits(repo: Path, root: Path,
                                                               tmp_path: Path) -> None:
    wt = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1").path
    lib = _nested_repo(wt / "vendor" / "lib", {"a.txt": "one\n", "b.txt": "two\n"})
    raw(lib, "switch", "-q", "-c", "feature")
    feature = commit(lib, "f.txt", "feature work\n")
    raw(lib, "switch", "-q", "main")
    raw(lib, "tag", "v1")
    (lib / "a.txt").write_text("uncommitted in the nested repo\n")
    (lib / "new.txt").write_text("untracked in the nested repo\n")
    (lib / ".gitignore").write_text("*.tmp\n")
    (lib / "cache.tmp").write_text("ignored in the nested repo\n")
    sub = _nested_repo(lib / "sub", {"s.txt": "deeper\n"})
    main_head = raw(lib, "rev-parse", "HEAD").stdout.strip()
    sub_head = raw(sub, "rev-parse", "HEAD").stdout.strip()
    # an agent-written config in the nested repo must run nothing on the host either
    canaries = tmp_path / "canaries"
    canaries.mkdir()
    hook = tmp_path / "canary.sh"
    hook.write_text(CANARY_SCRIPT.format(dir=canaries, name="ran", tail="cat"))
    hook.chmod(0o755)
    for k in ("core.fsmonitor", "uploadpack.packObjectsHook", "filter.evil.clean",
              "core.hooksPath"):
        raw(lib, "config", "--local", k, str(hook if k != "core.hooksPath" else tmp_path))
    (lib / ".gitattributes").write_text("*.txt filter=evil\n")

    losses = removal_losses(wt)
    assert losses == ["1 nested git repo (vendor/lib)",
                      "1 ignored file (vendor/lib/cache.tmp; 27 B)"]
    with pytest.raises(WorktreeError, match="nested git repo"):
        remove_worktree(repo, wt)
    assert (lib / ".git").is_dir()

    ref = remove_worktree(repo, wt, force=True, recovery_dir=tmp_path / "recovery")
    assert not wt.exists() and sorted(p.name for p in canaries.iterdir()) == []
    # the files are plain files in the recovery tree, not a gitlink
    for d in ("vendor/lib", "vendor/lib/sub"):
        mode = raw(repo, "ls-tree", ref, "--", d.rsplit("/", 1)[0] + "/").stdout
        assert "040000 tree " in mode and "160000" not in mode, mode  # 160000: a gitlink
    new = _restore_files(repo, root, ref, "PLA-2")
    rlib = new / "vendor" / "lib"
    assert (rlib / "a.txt").read_text() == "uncommitted in the nested repo\n"
    assert (rlib / "new.txt").read_text() == "untracked in the nested repo\n"
    assert (rlib / "sub" / "s.txt").read_text() == "deeper\n"
    # ... and the commits came along: branches, tags, HEAD, also of the repo inside it
    prefix = ref.nested_refs["vendor/lib"]
    assert prefix == f"refs/planeai/recovery-nested/{ref.rsplit('/', 1)[1]}/vendor/lib.git"
    assert raw(repo, "rev-parse", f"{prefix}/HEAD").stdout.strip() == main_head
    assert raw(repo, "rev-parse", f"{ref.nested_refs['vendor/lib/sub']}/HEAD").stdout.strip() \
        == sub_head
    _restore_nested(repo, prefix, rlib)
    assert raw(rlib, "rev-parse", "feature", "v1").stdout.split() == [feature, main_head]
    assert raw(rlib, "log", "--format=%s", "main").stdout.split("\n")[:2] == ["add b.txt",
                                                                                 "add a.txt"]
    status = raw(rlib, "status", "--porcelain").stdout.splitlines()
    assert " M a.txt" in status and "?? new.txt" in status  # work in progress is back too
    kept = tmp_path / "recovery" / "proj" / ref.rsplit("/", 1)[1]
    assert (kept / "vendor" / "lib" / "cache.tmp").read_text() == "ignored in the nested repo\n"
    assert "vendor/lib" in ref.describe() and str(kept) in ref.describe()
    message = raw(repo, "log", "-1", "--format=%B", ref).stdout
    assert f"vendor/lib  {prefix}/  (on branch main)" in message


def test_forced_removal_saves_a_nested_repo_without_commits(repo: Path, root: Path,
                                                            tmp_path: Path) -> None:
    wt = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1").path
    scratch = wt / "scratch"
    scratch.mkdir()
    raw(scratch, "init", "-q")
    (scratch / "notes.md").write_text("not committed anywhere\n")
    (scratch / "d").mkdir()
    (scratch / "d" / "x.py").write_text("print(1)\n")
    ref = remove_worktree(repo, wt, force=True, recovery_dir=tmp_path / "recovery")
    assert ref and not wt.exists()
    show = lambda p: raw(repo, "show", f"{ref}:{p}").stdout  # noqa: E731
    assert show("scratch/notes.md") == "not committed anywhere\n"
    assert show("scratch/d/x.py") == "print(1)\n"
    assert raw(repo, "for-each-ref", "refs/planeai/recovery-nested").stdout == ""


def test_ignored_files_refuse_plain_removal_and_force_moves_them_out_of_git(
        tmp_path: Path, root: Path) -> None:
    repo = make_repo(tmp_path / "proj", {"README.md": "hi\n",
                                         ".gitignore": ".env\nsecrets/\nbuild/\n"})
    wt = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1").path
    secret = b"API_KEY=sk-do-not-put-me-in-git-objects\n"
    (wt / ".env").write_bytes(secret)
    (wt / "secrets").mkdir()
    (wt / "secrets" / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    (wt / "build" / "out").mkdir(parents=True)
    artifact = os.urandom(2 << 20)
    (wt / "build" / "out" / "app.bin").write_bytes(artifact)
    before = {p: p.stat().st_mtime_ns for p in wt.rglob("*") if ".git" not in p.parts}

    assert removal_losses(wt) == ["3 ignored files (.env, build/, secrets/; 2.0 MiB)"]
    rec = tmp_path / "recovery"
    with pytest.raises(WorktreeError, match=r"3 ignored files \(.env, build/, secrets/"):
        remove_worktree(repo, wt)
    assert {p: p.stat().st_mtime_ns for p in before} == before  # refused: nothing changed
    assert not rec.exists() and raw(repo, "for-each-ref", "refs/planeai").stdout == ""
    assert len(list_worktrees(repo)) == 2

    ref = remove_worktree(repo, wt, force=True, recovery_dir=rec)
    assert ref and not wt.exists()
    kept = ref.ignored_dir
    assert kept == rec / "proj" / ref.rsplit("/", 1)[1]
    assert (kept.stat().st_mode & 0o777) == 0o700 and (rec.stat().st_mode & 0o777) == 0o700
    assert "3 ignored files" in ref.describe() and str(kept) in ref.describe()
    # the secret's content is in no git object at all
    sha = subprocess.run(["git", "hash-object", "--stdin"], input=secret, cwd=repo,
                         capture_output=True, check=True).stdout.decode().strip()
    assert raw(repo, "cat-file", "-e", sha, check=False).returncode != 0
    assert f"moved to {kept}" in raw(repo, "log", "-1", "--format=%B", ref).stdout
    # restore: copy them back into a worktree
    new = ensure_worktree(repo, root, "PLA-2", "planeai/PLA-2").path
    subprocess.run(["cp", "-a", f"{kept}/.", str(new)], check=True)
    assert (new / ".env").read_bytes() == secret
    assert (new / "secrets" / "key.pem").read_text() == "-----BEGIN PRIVATE KEY-----\n"
    assert (new / "build" / "out" / "app.bin").read_bytes() == artifact


def test_forced_removal_of_an_agent_worktree_with_nested_ignored_dirs(tmp_path: Path,
                                                                      root: Path) -> None:
    """A Claude session's worktree: the skill planeai installed (.claude/skills/planeai/,
    excluded in info/exclude) beside an ignored .claude/settings.local.json. git lists the
    directory and the ignored entries inside it; a forced removal moves it all once."""
    repo = make_repo(tmp_path / "proj", {"README.md": "hi\n",
                                         ".gitignore": ".claude/settings.local.json\n"})
    wt = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1").path
    (wt / ".claude" / "skills" / "planeai").mkdir(parents=True)
    (wt / ".claude" / "skills" / "planeai" / "SKILL.md").write_text("skill\n")
    (wt / ".claude" / "settings.local.json").write_text("{}\n")
    exclude = Path(raw(repo, "rev-parse", "--git-common-dir").stdout.strip())
    exclude = (exclude if exclude.is_absolute() else repo / exclude) / "info" / "exclude"
    exclude.parent.mkdir(exist_ok=True)
    with exclude.open("a") as f:
        f.write("/.claude/skills/planeai/\n")
    ref = remove_worktree(repo, wt, force=True, recovery_dir=tmp_path / "recovery")
    assert ref and not wt.exists()
    kept = ref.ignored_dir
    assert (kept / ".claude" / "skills" / "planeai" / "SKILL.md").read_text() == "skill\n"
    assert (kept / ".claude" / "settings.local.json").read_text() == "{}\n"


@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux not installed")
def test_cli_session_delete_refuses_then_force_keeps_everything(
        tmp_path: Path, repo: Path, root: Path, tmux_cli_env, planeai_home: Path) -> None:
    env = tmux_cli_env()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "planeai.cli.main", *args], env=env,
                              cwd=repo, capture_output=True, text=True, timeout=120)

    assert cli("project", "add", str(repo), "--key", "PLA").returncode == 0
    assert cli("task", "add", "keep my work").returncode == 0
    r = cli("session", "start", "PLA-1", "--backend", "tmux", "--provider", "shell", "--json")
    assert r.returncode == 0, r.stderr
    wt = Path(json.loads(r.stdout)["worktree"])
    tool = _nested_repo(wt / "tool", {"main.py": "print('v1')\n"})
    tool_head = raw(tool, "rev-parse", "HEAD").stdout.strip()
    (wt / ".env").write_text("TOKEN=agent-made\n")
    (wt / "build.log").write_bytes(b"x" * (2 << 20))

    r = cli("session", "delete", "PLA-1")
    assert r.returncode == 1 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "1 nested git repo (tool)" in r.stderr and "2 ignored files" in r.stderr
    assert "--force" in r.stderr
    listed = json.loads(cli("session", "list", "--json").stdout)
    assert [s["state"] for s in listed] == ["running"]
    assert (wt / ".env").is_file() and (tool / ".git").is_dir()

    r = cli("session", "delete", "PLA-1", "--force")
    assert r.returncode == 0, r.stderr
    m = re.search(r"kept in (refs/planeai/recovery/\S+) .*moved to (\S+)$", r.stdout.strip())
    assert m and "1 nested git repo (tool)" in r.stdout, r.stdout
    ref, kept = m.group(1), Path(m.group(2))
    assert kept.parent == planeai_home / "state" / "recovery" / repo.name
    assert not wt.exists() and json.loads(cli("session", "list", "--json").stdout) == []
    new = _restore_files(repo, root, ref, "PLA-9")
    assert (new / "tool" / "main.py").read_text() == "print('v1')\n"
    prefix = f"refs/planeai/recovery-nested/{ref.rsplit('/', 1)[1]}/tool.git"
    _restore_nested(repo, prefix, new / "tool")
    assert raw(new / "tool", "rev-parse", "HEAD").stdout.strip() == tool_head
    assert raw(new / "tool", "status", "--porcelain").stdout == ""
    assert (kept / ".env").read_text() == "TOKEN=agent-made\n"
    assert (kept / "build.log").stat().st_size == 2 << 20


def test_forced_removal_that_cannot_save_a_nested_repo_removes_nothing(
        repo: Path, root: Path, tmp_path: Path) -> None:
    wt = ensure_worktree(repo, root, "PLA-1", "planeai/PLA-1").path
    lib = _nested_repo(wt / "lib", {"a.txt": "one\n"})
    blob = raw(lib, "rev-parse", "HEAD:a.txt").stdout.strip()
    (lib / ".git" / "objects" / blob[:2] / blob[2:]).unlink()  # its history is broken
    (wt / ".env").write_text("KEEP=1\n")
    rec = tmp_path / "recovery"
    with pytest.raises(WorktreeError, match="could not save the commits of nested repo .*lib.*"
                                            "nothing was removed"):
        remove_worktree(repo, wt, force=True, recovery_dir=rec)
    assert (lib / "a.txt").read_text() == "one\n" and (wt / ".env").read_text() == "KEEP=1\n"
    assert raw(repo, "for-each-ref", "refs/planeai").stdout == ""
    assert len(list_worktrees(repo)) == 2 and not [p for p in rec.rglob("*") if not p.is_dir()]
