"""The git side of sessions on another host (planeai.remote.workspace) against a real sshd on
127.0.0.1 whose second user stands in for the other machine (tests/support/sshd.py). That user
cannot read this test's tmp dirs: commits travel only as bundles over the SSH connection."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import GIT_ENV, make_repo
from planeai.config import HostSettings
from planeai.errors import WorktreeError
from planeai.paths import locations
from planeai.remote.ssh import HostUnreachable, SshHost, control_dir
from planeai.remote.workspace import RemoteWorkspace

BRANCH = "planeai/PLA-1-fix-login"


class SpyHost(SshHost):
    """An SshHost that remembers every command line and every binary stdin/stdout."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.argvs: list[list[str]] = []
        self.sent: list[bytes] = []
        self.received: list[bytes] = []

    def run(self, remote_argv, **kw):
        self.argvs.append(list(remote_argv))
        return super().run(remote_argv, **kw)

    def run_bytes(self, remote_argv, *, input=None, **kw):
        self.argvs.append(list(remote_argv))
        rc, out, err = super().run_bytes(remote_argv, input=input, **kw)
        if input is not None:
            self.sent.append(input)
        self.received.append(out)
        return rc, out, err


@pytest.fixture
def conn(sshd):
    c = SpyHost("box", sshd.target, port=sshd.port, ssh_config=str(sshd.client_config),
                control_dir=control_dir(locations().runtime_dir))
    yield c
    c.exit_master()
    d = control_dir(locations().runtime_dir)
    if d.parent == Path("/tmp"):
        d.rmdir()


def settings(root: str = "", repos: dict[str, str] | None = None) -> HostSettings:
    return HostSettings(name="box", ssh="x", port=0, max_sessions=4,
                        root=root or f"~/t-{uuid.uuid4().hex[:8]}", repos=dict(repos or {}),
                        enabled=True, ssh_config="", connect_timeout=10)


def lgit(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env={**os.environ, **GIT_ENV}).stdout.strip()


def rgit(conn: SshHost, cwd: str, *args: str) -> str:
    """git as the host's user, there."""
    return conn.run(["git", "-c", "user.name=agent", "-c", "user.email=agent@host", "-C", cwd,
                     *args], check=True).out.strip()


def rwrite(conn: SshHost, path: str, text: str) -> None:
    conn.run(["sh", "-c", 'printf %s "$2" > "$1"', "sh", path, text], check=True)


def exists_there(conn: SshHost, path: str) -> bool:
    return conn.run(["test", "-e", path]).ok


def pack_objects(bundle: bytes) -> int:
    """Objects in a bundle's pack (the 4-byte count after 'PACK' and the version)."""
    at = bundle.index(b"PACK")
    return int.from_bytes(bundle[at + 8:at + 12], "big")


def started(conn, tmp_path, *, files: int = 0, root: str = "", project: str = "api",
            key: str = "API", repos=None, branch: str = BRANCH):
    """A local repo, its repo on the host, the base shipped and a worktree there."""
    local = make_repo(tmp_path / "local")
    if files:
        for n in range(files):
            (local / f"f{n}.txt").write_text(f"file {n}\n")
        lgit(local, "add", ".")
        lgit(local, "commit", "-q", "-m", "many files")
    ws = RemoteWorkspace(conn, settings(root, repos))
    repo = ws.ensure_repo(project, key)
    sha = ws.ship(repo, local, "main")
    path, created = ws.create_worktree(repo, "PLA-1", branch, sha)
    assert created
    return ws, local, repo, path, sha


def test_a_task_branch_made_there_comes_back_and_merges_here(conn, tmp_path):
    ws, local, repo, path, sha = started(conn, tmp_path)
    assert sha == lgit(local, "rev-parse", "main")
    assert path == f"{ws.root()}/worktrees/PLA-1" and ws.root().startswith("/home/")
    assert rgit(conn, path, "rev-parse", "HEAD") == sha
    assert rgit(conn, path, "symbolic-ref", "--short", "HEAD") == BRANCH
    assert ws.create_worktree(repo, "PLA-1", BRANCH, sha) == (path, False)  # reused

    rwrite(conn, f"{path}/feature.txt", "made on the host\n")
    rgit(conn, path, "add", "feature.txt")
    rgit(conn, path, "commit", "-q", "-m", "feature from the host")
    there = rgit(conn, path, "rev-parse", "HEAD")

    assert ws.fetch_branch(local, repo, BRANCH) == there
    assert lgit(local, "rev-parse", f"refs/heads/{BRANCH}") == there
    lgit(local, "merge", "-q", "--no-edit", BRANCH)
    assert (local / "feature.txt").read_text() == "made on the host\n"
    assert lgit(local, "log", "-1", "--format=%s") == "feature from the host"

    # fetched back = safe: a plain removal goes through
    assert ws.removal_losses(path) == []
    assert ws.remove_worktree(repo, path, force=False, local_repo=local, branch=BRANCH) is None
    assert not exists_there(conn, path)
    assert "PLA-1" not in rgit(conn, repo, "worktree", "list")


def test_bundles_carry_only_what_the_other_side_lacks(conn, tmp_path):
    ws, local, repo, path, sha = started(conn, tmp_path, files=40)
    first = conn.sent[-1]
    assert pack_objects(first) >= 40 + 1 + 2   # the blobs, a tree, the commits

    sent = len(conn.sent)
    assert ws.ship(repo, local, "main") == sha   # the host has it: nothing is sent
    assert len(conn.sent) == sent

    (local / "later.txt").write_text("later\n")
    lgit(local, "add", "later.txt")
    lgit(local, "commit", "-q", "-m", "later")
    later = ws.ship(repo, local, "main")
    assert len(conn.sent) == sent + 1
    assert pack_objects(conn.sent[-1]) == 3     # one commit, one tree, one blob
    assert len(conn.sent[-1]) < len(first) / 3
    assert rgit(conn, repo, "cat-file", "-t", later) == "commit"
    assert rgit(conn, repo, "rev-parse", f"refs/planeai/base/{later}") == later

    # and back: only the host's new commit travels
    rwrite(conn, f"{path}/host.txt", "host\n")
    rgit(conn, path, "add", "host.txt")
    rgit(conn, path, "commit", "-q", "-m", "host")
    ws.fetch_branch(local, repo, BRANCH)
    assert pack_objects(conn.received[-1]) == 3
    # nothing left in tmp there, no temp refs here
    assert conn.run(["ls", "-A", f"{ws.root()}/tmp"], check=True).out == ""
    assert lgit(local, "for-each-ref", "refs/planeai") == ""


@pytest.mark.parametrize("work, loss", [
    ("uncommitted", "1 uncommitted"),
    ("untracked", "1 untracked"),
    ("unpushed", "1 unpushed"),
    ("ignored", "1 ignored file (.env; "),
])
def test_removal_refuses_over_work_it_would_lose(conn, tmp_path, work, loss):
    ws, local, repo, path, sha = started(conn, tmp_path)
    if work == "uncommitted":
        rwrite(conn, f"{path}/README.md", "changed\n")
    elif work == "untracked":
        rwrite(conn, f"{path}/notes.txt", "new\n")
    elif work == "unpushed":
        rwrite(conn, f"{path}/README.md", "committed there\n")
        rgit(conn, path, "commit", "-q", "-am", "only there")
    else:
        conn.run(["sh", "-c", 'mkdir -p "$1/info" && echo .env >> "$1/info/exclude"', "sh",
                  repo], check=True)
        rwrite(conn, f"{path}/.env", "TOKEN=x\n")
    losses = ws.removal_losses(path)
    assert len(losses) == 1 and losses[0].startswith(loss), losses
    with pytest.raises(WorktreeError) as e:
        ws.remove_worktree(repo, path, force=False, local_repo=local, branch=BRANCH)
    msg = str(e.value)
    assert "\n" not in msg and "host box" in msg and loss in msg and "force" in msg
    assert exists_there(conn, path)
    assert lgit(local, "for-each-ref", "refs/planeai") == ""


def test_forced_removal_saves_the_work_in_the_local_repo(conn, tmp_path):
    ws, local, repo, path, sha = started(conn, tmp_path)
    rwrite(conn, f"{path}/README.md", "committed there\n")
    rgit(conn, path, "commit", "-q", "-am", "only there")
    unpushed = rgit(conn, path, "rev-parse", "HEAD")
    rwrite(conn, f"{path}/README.md", "uncommitted there\n")
    conn.run(["mkdir", "-p", f"{path}/new dir"], check=True)
    rwrite(conn, f"{path}/new dir/untracked.txt", "untracked there\n")
    conn.run(["git", "init", "-q", f"{path}/vendor/lib"], check=True)   # an agent's clone
    rwrite(conn, f"{path}/vendor/lib/lib.c", "int x;\n")
    conn.run(["sh", "-c", 'echo .env >> "$1/info/exclude"', "sh", repo], check=True)
    rwrite(conn, f"{path}/.env", "TOKEN=x\n")
    losses = ws.removal_losses(path)
    assert losses[:4] == ["1 uncommitted", "1 untracked", "1 unpushed",
                          "1 nested git repo (vendor/lib)"]
    assert losses[4].startswith("1 ignored file (.env; ") and len(losses) == 5

    ref = ws.remove_worktree(repo, path, force=True, local_repo=local, branch=BRANCH)
    assert ref.startswith("refs/planeai/recovery/PLA-1-")
    assert not exists_there(conn, path)
    # all of it is here now, in the local repo
    assert lgit(local, "show", f"{ref}:README.md") == "uncommitted there"
    assert lgit(local, "show", f"{ref}:new dir/untracked.txt") == "untracked there"
    assert lgit(local, "show", f"{ref}:vendor/lib/lib.c") == "int x;"
    assert lgit(local, "rev-parse", f"{ref}^") == unpushed
    assert ".env" not in lgit(local, "ls-tree", "--name-only", ref)
    # ignored files are set aside there (a recovery dir of the same id), not deleted
    aside = f"{ws.root()}/recovery/{ref.rsplit('/', 1)[1]}"
    assert conn.run(["cat", f"{aside}/.env"], check=True).out == "TOKEN=x\n"
    assert conn.run(["stat", "-c", "%a", aside], check=True).out == "700\n"
    assert ".env" in lgit(local, "log", "-1", "--format=%B", ref)
    assert lgit(local, "show", f"{unpushed}:README.md") == "committed there"
    assert rgit(conn, repo, "rev-parse", ref) == lgit(local, "rev-parse", ref)


def test_fetch_branch_never_moves_a_local_branch_backwards_or_sideways(conn, tmp_path):
    ws, local, repo, path, sha = started(conn, tmp_path)
    rwrite(conn, f"{path}/a.txt", "there\n")
    rgit(conn, path, "add", "a.txt")
    rgit(conn, path, "commit", "-q", "-m", "there")
    lgit(local, "branch", BRANCH, "main")
    lgit(local, "worktree", "add", "-q", str(tmp_path / "wt"), BRANCH)
    (tmp_path / "wt" / "b.txt").write_text("here\n")
    lgit(tmp_path / "wt", "add", "b.txt")
    lgit(tmp_path / "wt", "commit", "-q", "-m", "here")
    mine = lgit(local, "rev-parse", BRANCH)
    with pytest.raises(WorktreeError, match=f"local branch {BRANCH} has commits"):
        ws.fetch_branch(local, repo, BRANCH)
    assert lgit(local, "rev-parse", BRANCH) == mine
    assert lgit(local, "for-each-ref", "refs/planeai") == ""
    with pytest.raises(WorktreeError, match="no branch planeai/none"):
        ws.fetch_branch(local, repo, "planeai/none")


def test_a_configured_repo_path_that_is_no_repo_is_one_clear_error(conn, tmp_path):
    conn.run(["mkdir", "-p", "plain dir"], check=True)
    ws = RemoteWorkspace(conn, settings(repos={"api": "~/plain dir"}))
    home = conn.home()
    assert ws.repo_path("api", "API") == f"{home}/plain dir"
    with pytest.raises(WorktreeError) as e:
        ws.ensure_repo("api", "API")
    assert str(e.value) == (f"host box: the repo of project 'api' at {home}/plain dir is not "
                            "a git repository there")
    # the default place is planeai's own: made when missing, then reused
    other = ws.ensure_repo("web", "WEB")
    assert other.startswith(f"{ws.root()}/repos/WEB-")
    assert ws.ensure_repo("web", "WEB") == other
    assert rgit(conn, other, "rev-parse", "--is-bare-repository") == "true"


def test_files_and_secrets_are_written_from_stdin(conn, tmp_path):
    ws = RemoteWorkspace(conn, settings())
    d = ws.session_dir("s-42")
    assert conn.run(["stat", "-c", "%a", d], check=True).out.strip() == "700"
    ws.write_files(f"{d}/skills", {"a/SKILL.md": b"# skill\n", "prompt.txt": b"do it\n"})
    assert conn.run(["cat", f"{d}/skills/a/SKILL.md"], check=True).out == "# skill\n"
    assert conn.run(["stat", "-c", "%a", f"{d}/skills/prompt.txt"], check=True).out == "644\n"
    for bad in ("../escape", "/etc/x", "a/../../b", ""):
        with pytest.raises(WorktreeError, match="not a plain relative path"):
            ws.write_files(d, {bad: b"x"})

    secret = f"sk-{uuid.uuid4().hex}".encode()
    ws.write_private(f"{d}/env/secrets", secret)
    ws.write_private(f"{d}/env/secrets", secret + b"2")     # replaced whole
    assert conn.run(["cat", f"{d}/env/secrets"], check=True).out == secret.decode() + "2"
    assert conn.run(["stat", "-c", "%a", f"{d}/env/secrets", f"{d}/env"],
                    check=True).out.split() == ["600", "700"]
    assert conn.run(["ls", "-A", f"{d}/env"], check=True).out == "secrets\n"
    assert not any(secret.decode() in w for argv in conn.argvs for w in argv)


def test_hostile_names_and_paths_reach_nothing_as_code(conn, tmp_path, canary):
    word = (f"it's \"q\" $(touch {canary}) `touch {canary}`; touch {canary} "
            f"#(touch {canary}) #{{pane_id}} a  b")
    branch = f"planeai/$(touch${{IFS}}{canary})`touch${{IFS}}{canary}`#(touch${{IFS}}{canary})"
    conn.run(["mkdir", "-p", f"r {word}"], check=True)
    repo_there = f"~/r {word}/repo"
    conn.run(["git", "init", "-q", conn.path(repo_there)], check=True)
    ws, local, repo, path, sha = started(
        conn, tmp_path, root=f"~/root {word}", project=word, key=word,
        repos={word: repo_there}, branch=branch)
    assert repo == conn.path(repo_there) and path.startswith(conn.path(f"~/root {word}/"))
    rwrite(conn, f"{path}/x.txt", word)
    rgit(conn, path, "add", "x.txt")
    rgit(conn, path, "commit", "-q", "-m", word)
    tip = ws.fetch_branch(local, repo, branch)
    assert lgit(local, "rev-parse", f"refs/heads/{branch}") == tip
    assert lgit(local, "show", f"{tip}:x.txt") == word.strip()

    d = ws.session_dir("s1")
    ws.write_files(d, {f"{word}/f.txt": word.encode()})
    ws.write_private(f"{d}/{word}/secret", word.encode())
    assert conn.run(["cat", f"{d}/{word}/f.txt"], check=True).out == word
    name = word.replace("/", "_")   # one file name
    rwrite(conn, f"{path}/{name}", word)
    assert ws.removal_losses(path) == ["1 untracked"]
    ref = ws.remove_worktree(repo, path, force=True, local_repo=local, branch=branch)
    assert lgit(local, "show", f"{ref}:{name}") == word.strip()
    # the slug of a hostile key is plain
    slug = ws.repo_path("other", word).rsplit("/", 1)[1]
    assert slug.replace("-", "").isalnum()


def test_failures_are_one_line_naming_the_host_and_what_failed(conn, tmp_path):
    ws, local, repo, path, sha = started(conn, tmp_path)
    conn.run(["mkdir", "-p", f"{ws.root()}/worktrees/PLA-2/junk"], check=True)
    with pytest.raises(WorktreeError) as e:
        ws.create_worktree(repo, "PLA-2", "planeai/PLA-2", sha)
    msg = str(e.value)
    assert msg.startswith("host box: git worktree add in ") and "already exists" in msg
    assert "\n" not in msg
    for bad in ("../PLA-3", "a/b", "-x", ""):
        with pytest.raises(WorktreeError):
            ws.create_worktree(repo, bad, "planeai/PLA-3", sha)
    with pytest.raises(WorktreeError, match="is not a commit in"):
        ws.ship(repo, local, "no-such-branch")
    with pytest.raises(WorktreeError, match="invalid start point"):
        ws.ship(repo, local, "--upload-pack=touch x")
    with pytest.raises(WorktreeError, match="not a linked worktree"):
        ws.remove_worktree(repo, f"{ws.root()}/worktrees/PLA-2", force=True, local_repo=local)
    assert exists_there(conn, f"{ws.root()}/worktrees/PLA-2/junk")


def test_an_unreachable_host_is_host_unreachable(tmp_path):
    with socket.socket() as s:   # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = SshHost("box", "nobody@127.0.0.1", port=port, control_dir=control_dir(
        locations().runtime_dir), connect_timeout=5)
    ws = RemoteWorkspace(c, settings(root="/srv/planeai"))
    with pytest.raises(HostUnreachable, match="host box"):
        ws.ensure_repo("api", "API")
    d = control_dir(locations().runtime_dir)
    if d.parent == Path("/tmp"):
        d.rmdir()


def test_a_root_through_a_symlink_still_finds_its_worktrees(conn, tmp_path):
    real = f"real-{uuid.uuid4().hex[:8]}"
    conn.run(["mkdir", real], check=True)
    conn.run(["ln", "-s", real, f"link-{real}"], check=True)
    ws, local, repo, path, sha = started(conn, tmp_path, root=f"~/link-{real}")
    assert ws.create_worktree(repo, "PLA-1", BRANCH, sha) == (path, False)
    assert ws.remove_worktree(repo, path, force=False, local_repo=local, branch=BRANCH) is None
    assert not exists_there(conn, path)


def test_an_agents_repo_config_runs_nothing_while_its_work_is_saved(conn, tmp_path, canary):
    """An agent there can write the repo's config: filter and diff drivers it names must not
    run when planeai inspects or saves its worktree (as safe_git does here)."""
    ws, local, repo, path, sha = started(conn, tmp_path)
    rgit(conn, path, "config", "filter.evil.clean", f"touch {canary}; cat")
    rgit(conn, path, "config", "filter.evil.process", f"touch {canary}")
    rgit(conn, path, "config", "diff.external", f"touch {canary}")
    rwrite(conn, f"{path}/.gitattributes", "* filter=evil\n")
    rwrite(conn, f"{path}/README.md", "changed by the agent\n")
    assert ws.removal_losses(path) == ["1 uncommitted", "1 untracked"]
    ref = ws.remove_worktree(repo, path, force=True, local_repo=local, branch=BRANCH)
    assert lgit(local, "show", f"{ref}:README.md") == "changed by the agent"


def test_git_quoted_paths_are_read_back():
    from planeai.remote.workspace import _c_unquote
    assert _c_unquote('"/a \\"b\\" \\\\ \\303\\251\\n"') == '/a "b" \\ é\n'
    assert _c_unquote('/plain "x"') == '/plain "x"'
