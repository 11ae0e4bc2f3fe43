"""Bad input and broken surroundings: one clear line on stderr, exit 1, nothing half-written.

Everything here is real: a non-UTF-8 provider file on disk, a database page really
overwritten in the file, a disk really full (a tmpfs of a few hundred KiB), a home really
read-only (a read-only tmpfs; a process without CAP_DAC_OVERRIDE for plain permissions), and
the real CLI in a subprocess, as a user runs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from conftest import install_echo_agent, make_repo

from planeai.core import validate
from support.cli_errors import one_line_error

NOT_UTF8 = b'name = "broken"\nbinary = "sh"\ncommand = ["sh"]\n# caf\xe9 au lait\n'


def cli(*args: str, cwd: Path | None = None, env: dict | None = None,
        prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*(prefix or []), sys.executable, "-m", "planeai.cli.main", *args],
                          cwd=cwd, env=env or os.environ.copy(), capture_output=True, text=True,
                          timeout=120)


def ok(*args: str, **kw) -> subprocess.CompletedProcess:
    r = cli(*args, **kw)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r


@pytest.fixture
def project(repo: Path) -> Path:
    ok("project", "add", str(repo), "--key", "PLA")
    return repo


def task_titles(**kw) -> list[str]:
    return [t["title"] for t in json.loads(ok("task", "list", "--all-projects", "--json",
                                             **kw).stdout)]


# ---------------------------------------------------------------------- mounts (real ones)
def _mount(target: Path, options: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    target.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


@pytest.fixture
def mounts():
    done: list[Path] = []

    def mount(target: Path, options: str) -> Path:
        _mount(target, options)
        done.append(target)
        return target

    yield mount
    for t in reversed(done):
        subprocess.run(["umount", "-l", str(t)], capture_output=True)


def fill(fs: Path, name: str = "filler") -> Path:
    """Write until the file system says ENOSPC; the filler is returned to free space later."""
    filler = fs / name
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == 28, e
        try:
            while True:
                f.write(b"\0")  # the last partial block too
        except OSError:
            pass
    return filler


# ---------------------------------------------------------------------- 1. provider files
def test_non_utf8_user_provider_file_is_reported_once_and_the_rest_load(planeai_home):
    d = planeai_home / "config" / "providers"
    d.mkdir(parents=True)
    (d / "broken.toml").write_bytes(NOT_UTF8)
    r = ok("provider", "list", "--json")
    names = {p["name"] for p in json.loads(r.stdout)}
    assert {"claude", "codex", "shell"} <= names and "broken" not in names
    assert r.stderr.strip().splitlines() == [
        f"planeai: warning: skipped {d / 'broken.toml'}: not UTF-8 text (byte 0xe9 at offset "
        f"{NOT_UTF8.index(bytes([0xe9]))}); save it as UTF-8"]
    assert "Traceback" not in r.stderr
    one_line_error(cli("provider", "show", "broken"),
                   f"provider 'broken' was skipped: {d / 'broken.toml'}: not UTF-8 text")


def test_a_broken_override_is_not_silently_replaced_by_the_bundled_provider(planeai_home):
    d = planeai_home / "config" / "providers"
    d.mkdir(parents=True)
    (d / "codex.toml").write_bytes(NOT_UTF8.replace(b"broken", b"codex"))
    one_line_error(cli("provider", "show", "codex"),
                   f"provider 'codex' was skipped: {d / 'codex.toml'}: not UTF-8 text")


def test_non_utf8_project_provider_file_does_not_break_session_start(
        planeai_home, project, private_tmux, tmp_path):
    socket, tmux_tmp = private_tmux
    cfg = tmp_path / "planeai.toml"
    cfg.write_text(f'[defaults]\nbackend = "tmux"\n[tmux]\nsocket = "{socket}"\n')
    env = {**os.environ, "PLANEAI_CONFIG": str(cfg), "TMUX_TMPDIR": str(tmux_tmp)}
    env.pop("TMUX", None)
    agent = install_echo_agent(planeai_home / "config" / "providers")
    pdir = project / ".planeai" / "providers"
    pdir.mkdir(parents=True)
    (pdir / "broken.toml").write_bytes(NOT_UTF8)
    ok("trust", str(project), env=env)
    r = ok("provider", "list", cwd=project, env=env)
    assert [ln for ln in r.stderr.splitlines() if "broken.toml" in ln] == [
        f"planeai: warning: skipped {pdir / 'broken.toml'}: not UTF-8 text (byte 0xe9 at "
        f"offset {NOT_UTF8.index(bytes([0xe9]))}); save it as UTF-8"]
    ok("task", "add", "one", cwd=project, env=env)
    one_line_error(cli("session", "start", "PLA-1", "--provider", "broken", cwd=project,
                       env=env), "provider 'broken' was skipped", "not UTF-8 text")
    r = ok("session", "start", "PLA-1", "--provider", agent, cwd=project, env=env)
    assert "Traceback" not in r.stderr
    assert r.stdout.startswith("started PLA-1"), r.stdout


# ---------------------------------------------------------------------- 2. damaged database
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_damaged_page_refuses_every_write_and_reads_say_so(planeai_home, project):
    for i in range(40):  # two leaf pages of tasks: the damaged one is not where inserts go
        ok("task", "add", f"task {i} with a title long enough to fill pages", "-d",
           "a description of some length " * 3, cwd=project)
    db = planeai_home / "data" / "planeai.db"
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = c.execute("PRAGMA page_size").fetchone()[0]
        leaves = [r[0] for r in c.execute(
            "SELECT pageno FROM dbstat WHERE name = 'tasks' AND pagetype = 'leaf' ORDER BY path")]
    c.close()
    assert len(leaves) >= 2, leaves
    with open(db, "r+b") as f:  # the middle of the first leaf: cell headers, not just text
        f.seek(page_size * (leaves[0] - 1) + page_size // 4)
        f.write(b"\xff" * (page_size // 4))
    with sqlite3.connect(db) as c:  # really damaged, as SQLite sees it
        assert c.execute("PRAGMA quick_check").fetchone()[0] != "ok"
    c.close()
    before = _digest(db)

    for args in (["task", "add", "must not be written"], ["task", "done", "PLA-40"],
                 ["project", "add", str(make_repo(project.parent / "other")), "--key", "OTH"]):
        one_line_error(cli(*args, cwd=project), f"database {db} is damaged (",
                       "); restore a backup or move it aside")
        assert _digest(db) == before, args
        wal = Path(f"{db}-wal")
        assert not wal.exists() or wal.stat().st_size == 0, args
    one_line_error(cli("task", "list", cwd=project), f"database {db} is damaged (")


# ---------------------------------------------------------------------- 3. full disk, read-only
def test_a_full_disk_is_one_line_and_loses_nothing(tmp_path, monkeypatch, mounts):
    fs = mounts(tmp_path / "fs", "size=768k")
    home = fs / "home"
    monkeypatch.setenv("PLANEAI_HOME", str(home))
    repo = make_repo(tmp_path / "repo")
    ok("project", "add", str(repo), "--key", "PLA")
    ok("task", "add", "before the disk filled", cwd=repo)
    big = tmp_path / "desc.txt"
    big.write_text("x" * 200_000)

    # another process has the database open (its -wal and -shm stay) while the disk fills
    holder = sqlite3.connect(home / "data" / "planeai.db")
    holder.execute("SELECT count(*) FROM tasks").fetchall()
    fillers = [fill(fs)]
    try:
        one_line_error(cli("task", "add", "big", "--description-file", str(big), cwd=repo),
                       "the disk is full", "free some space")
    finally:
        holder.close()
    # nobody has it open (closing it freed its -wal and -shm): SQLite cannot map its -shm
    fillers.append(fill(fs, "filler2"))
    one_line_error(cli("task", "add", "small", cwd=repo), "the disk is full",
                   "free some space")

    for f in fillers:
        f.unlink()
    assert task_titles() == ["before the disk filled"]
    ok("task", "add", "after space was freed", cwd=repo)
    assert task_titles() == ["before the disk filled", "after space was freed"]


def test_a_read_only_fresh_home_is_one_line(tmp_path, monkeypatch, mounts):
    ro = mounts(tmp_path / "ro", "ro,size=64k")
    monkeypatch.setenv("PLANEAI_HOME", str(ro / "home"))
    repo = make_repo(tmp_path / "repo")
    for args in (["project", "add", str(repo)], ["task", "add", "x"], ["task", "list"],
                 ["session", "list"]):
        one_line_error(cli(*args, cwd=repo), f"{ro / 'home'}: the file system is read-only",
                       "set PLANEAI_HOME to a directory you can write")
    assert not (ro / "home").exists()


def test_an_unwritable_fresh_home_is_one_line(tmp_path, monkeypatch):
    """Root ignores file modes; without CAP_DAC_OVERRIDE it obeys them like any user."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop CAP_DAC_OVERRIDE")
    parent = tmp_path / "locked"
    parent.mkdir(mode=0o500)
    parent.chmod(0o500)
    monkeypatch.setenv("PLANEAI_HOME", str(parent / "home"))
    repo = make_repo(tmp_path / "repo")
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    one_line_error(cli("project", "add", str(repo), cwd=repo, prefix=drop),
                   f"{parent / 'home'}: permission denied",
                   "set PLANEAI_HOME to a directory you can write")
    assert not (parent / "home").exists()


def test_a_non_utf8_git_file_reaches_the_one_error_path(tmp_path, project):
    """A decoding failure nobody caught on purpose still becomes one line naming the file."""
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / ".git").write_bytes(b"gitdir: /x/\xff\xfe\n")
    one_line_error(cli("task", "add", "x", cwd=odd),
                   f"{odd / '.git'} is not UTF-8 text (byte 0xff at offset 11)")
    assert task_titles() == []


# ---------------------------------------------------------------------- 5. config numbers
@pytest.mark.parametrize("line, key, accepted", [
    ("[dispatch]\npoll_interval = nan", "dispatch.poll_interval = nan is not a finite number",
     "0.05..3600 seconds"),
    ("[dispatch]\npoll_interval = inf", "dispatch.poll_interval = inf is not a finite number",
     "0.05..3600 seconds"),
    ("[dispatch]\npoll_interval = 0.001", "dispatch.poll_interval = 0.001 is out of range",
     "0.05..3600 seconds"),
    ("[hooks]\ntimeout = 1e999", "hooks.timeout = inf is not a finite number",
     "1..86400 seconds"),
    ("[hooks]\ntimeout = -nan", "hooks.timeout = nan is not a finite number", "1..86400"),
    ("[dispatch]\nstale_after = 1e300", "dispatch.stale_after = 1e+300 is out of range",
     "1..604800 seconds"),
    ("[dispatch]\nmax_sessions = 9223372036854775807",
     "dispatch.max_sessions = 9223372036854775807 is out of range", "1..1000"),
    ("[daemon]\nscrollback = -1", "daemon.scrollback = -1 is out of range", "0..1000000"),
    ("[defaults]\npriority = 5000", "defaults.priority = 5000 is out of range", "-1000..1000"),
    ("[dispatch]\nper_project = { x = 100000 }",
     "dispatch.per_project: x = 100000: values are whole numbers in 0..1000", ""),
    ("[dispatch]\nrules = [{ provider = 'c', min_priority = 99999 }]",
     "dispatch.rules: rule 1: min_priority = 99999 is out of range", "-1000..1000"),
    ("dispatch.poll_interval = nan", "dispatch.poll_interval = nan", "0.05..3600"),
])
def test_numbers_in_config_have_ranges(tmp_path, line, key, accepted):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f"# a comment\n{line}\n")
    where = f"{cfg}:{line.count(chr(10)) + 2}: "
    one_line_error(cli("--config", str(cfg), "dispatch", "status"), where + key, accepted)


# ---------------------------------------------------------------------- 5. invisible characters
INVISIBLE = {"\u202e": "U+202E RIGHT-TO-LEFT OVERRIDE", "\u2066": "U+2066 LEFT-TO-RIGHT ISOLATE",
             "\u200f": "U+200F RIGHT-TO-LEFT MARK", "\u200b": "U+200B ZERO WIDTH SPACE",
             "\ufeff": "U+FEFF ZERO WIDTH NO-BREAK SPACE",
             "\U000e0041": "U+E0041 TAG LATIN CAPITAL LETTER A",
             "\u2028": "U+2028 LINE SEPARATOR", "\x9b": "U+009B control character"}


@pytest.mark.parametrize("ch", list(INVISIBLE), ids=[v[:6] for v in INVISIBLE.values()])
def test_titles_names_and_descriptions_refuse_invisible_characters(project, ch):
    title = f"invoice{ch}txt.exe"
    one_line_error(cli("task", "add", title, cwd=project), f"title contains {INVISIBLE[ch]} "
                   "at position 8, an invisible or control character")
    ok("task", "add", "plain", cwd=project)
    one_line_error(cli("task", "edit", "PLA-1", "--title", title, cwd=project),
                   f"title contains {INVISIBLE[ch]}")
    if ch != "\u2028":  # a line separator is a newline in a description
        one_line_error(cli("task", "add", "ok", "-d", f"line one\nline {ch}two", cwd=project),
                       f"description contains {INVISIBLE[ch]} on line 2")
    one_line_error(cli("project", "add", str(make_repo(project.parent / "other")),
                       "--name", f"oth{ch}er", cwd=project), f"contains {INVISIBLE[ch]}")
    assert task_titles() == ["plain"]


def test_refused_characters_are_unicodes_controls_and_formats_but_not_joiners(project):
    cf = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"]
    missed = [f"U+{ord(c):04X}" for c in cf
              if c not in "\u200c\u200d" and not validate._CONTROL_LINE.match(c)]
    assert missed == []
    extra = [f"U+{c:04X}" for c in range(0x110000)
             if validate._CONTROL_LINE.match(chr(c))
             and unicodedata.category(chr(c)) not in ("Cc", "Cf", "Cn", "Zl", "Zp")]
    assert extra == []
    # ZWJ and ZWNJ, tabs and newlines in descriptions: real text needs them
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # an emoji sequence
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # ZWNJ inside a word
    ok("task", "add", f"{family} {persian}", "-d", "col1\tcol2\nnext line\r\n", cwd=project)
    assert task_titles() == [f"{family} {persian}"]


def test_session_start_with_an_empty_key_starts_nothing(project):
    for key in ("", "  "):
        one_line_error(cli("session", "start", key, "--backend", "tmux", cwd=project),
                       "task key is empty; give one like PLA-1")
    from planeai.services.context import open_store

    with open_store() as s:  # read the store: `session list` would reconcile with tmux
        assert s.list_sessions() == []


# ---------------------------------------------------------------------- 5. private files
def _mode(p: Path) -> str:
    return oct(p.stat().st_mode & 0o777)


def test_data_state_and_runtime_dirs_and_the_database_are_private(planeai_home, project):
    from planeai.paths import locations
    from planeai.services.context import open_store

    locs = locations()
    dirs = [locs.data_dir, locs.worktrees_dir, locs.state_dir, locs.runtime_dir]
    db = locs.db_path
    with open_store():  # a connection open: -wal and -shm exist
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert {str(d): _mode(d) for d in dirs} == {str(d): "0o700" for d in dirs}
        assert {str(f): _mode(f) for f in files} == {str(f): "0o600" for f in files}
    # made by an older planeai (or a loose umask): fixed on the next command
    with open_store():
        for d in dirs:
            d.chmod(0o755)
        for f in files:
            f.chmod(0o644)
        ok("task", "list", cwd=project)
        assert {str(d): _mode(d) for d in dirs} == {str(d): "0o700" for d in dirs}
        assert {str(f): _mode(f) for f in files} == {str(f): "0o600" for f in files}


def test_one_line_errors_carry_no_escape_sequences(planeai_home, project):
    """A damaged row's text is quoted in SQLite's message; it must not drive the terminal."""
    ok("task", "add", "victim", cwd=project)
    db = planeai_home / "data" / "planeai.db"
    with sqlite3.connect(db) as c:  # bytes that are not UTF-8, with an escape sequence
        c.execute("UPDATE tasks SET title = CAST(? AS TEXT)", (b"\x1b]0;owned\x07\xff",))
    c.close()
    line = one_line_error(cli("task", "list", cwd=project), f"database {db} is damaged (")
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", line), repr(line)
