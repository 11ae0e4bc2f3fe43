"""The SQLite store: concurrency, crash safety, migrations."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import retry_until, run_subprocess

from planeai.store.repository import Store
from planeai.store.schema import MIGRATIONS, SCHEMA_VERSION

WORKER = textwrap.dedent("""
    import sys
    from planeai.services.context import open_store
    from planeai.services import tasks
    n = int(sys.argv[1]); tag = sys.argv[2]
    with open_store() as s:
        project = s.find_project("PLA")
        for i in range(n):
            tasks.add_task(s, project, f"{tag}-{i}", description="d" * 100)
            if i == 0:
                print("started", flush=True)
""")


def _add_project(run_cli, repo: Path) -> None:
    assert run_cli("project", "add", str(repo), "--key", "PLA")[0] == 0


def test_16_processes_x_50_adds_unique_keys(run_cli, repo, planeai_home):
    _add_project(run_cli, repo)
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, "50", f"w{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(16)]
    errors = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        if p.returncode != 0:
            errors.append(err.decode())
    assert errors == []
    s = Store.open(planeai_home / "data" / "planeai.db")
    keys = [r[0] for r in s.conn.execute("SELECT key FROM tasks")]
    assert len(keys) == 800 and len(set(keys)) == 800
    assert sorted(keys) == sorted(f"PLA-{n}" for n in range(1, 801))
    titles = {r[0] for r in s.conn.execute("SELECT title FROM tasks")}
    assert titles == {f"w{i}-{j}" for i in range(16) for j in range(50)}
    assert s.integrity_check() == "ok"
    created = [e for e in s.events(limit=10_000) if e.kind == "task.created"]
    assert len(created) == 800  # the log agrees with the table


def test_cli_processes_add_concurrently(run_cli, repo):
    _add_project(run_cli, repo)
    procs = [subprocess.Popen([sys.executable, "-m", "planeai.cli.main", "task", "add",
                               f"t{i}", "--project", "PLA"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for i in range(12)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 12, [e for _, e in outs]
    assert sorted(o.decode().strip() for o, _ in outs) == sorted(f"PLA-{n}" for n in range(1, 13))


def test_sigkill_mid_add_leaves_no_half_task(run_cli, repo, planeai_home):
    _add_project(run_cli, repo)
    for attempt in range(3):
        p = subprocess.Popen([sys.executable, "-c", WORKER, "100000", f"k{attempt}"],
                             stdout=subprocess.PIPE)
        assert p.stdout.readline().strip() == b"started"
        db = planeai_home / "data" / "planeai.db"

        def some_rows():
            c = sqlite3.connect(db, timeout=30)
            try:
                return c.execute("SELECT COUNT(*) FROM tasks").fetchone()[0] > 20 * (attempt + 1)
            finally:
                c.close()

        retry_until(some_rows, timeout=60, message="the worker to add tasks")
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    s = Store.open(planeai_home / "data" / "planeai.db")
    assert s.integrity_check() == "ok"
    rows = s.conn.execute("SELECT key, number, title, description FROM tasks").fetchall()
    keys = [r[0] for r in rows]
    assert len(keys) == len(set(keys))
    assert all(len(r[3]) == 100 for r in rows)  # no half-written task
    counter = s.conn.execute("SELECT last_number FROM key_counters WHERE prefix='PLA'").fetchone()
    assert counter[0] == max(r[1] for r in rows)  # counter and rows committed together
    created = {e.task_key for e in s.events(limit=1_000_000) if e.kind == "task.created"}
    assert created == set(keys)
    # the store keeps working after the crash
    code, out, _ = run_cli("task", "add", "after crash", "--project", "PLA")
    assert code == 0 and out.strip() == f"PLA-{counter[0] + 1}"


def test_migration_from_version_1_keeps_data(tmp_path):
    db = tmp_path / "old.db"
    old = Store.open(db, migrate_to=1)
    assert old.schema_version() == 1
    old.conn.executescript("""
        INSERT INTO projects (name, key_prefix, path, created_at) VALUES ('p', 'P', '/x', 't');
        INSERT INTO key_counters VALUES ('P', 1);
        INSERT INTO tasks (project_id, key, number, title, created_at, updated_at)
             VALUES (1, 'P-1', 1, 'old task', 't', 't');
    """)
    assert "sessions" not in {r[0] for r in old.conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    old.close()
    new = Store.open(db)
    assert new.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    assert new.get_task("P-1").title == "old task"
    new.conn.execute("SELECT id, state, exit_code FROM sessions").fetchall()
    project = new.find_project("P")
    assert new.add_task(project, title="new").key == "P-2"


def test_done_requested_is_session_state_migrated_off_for_existing_rows(tmp_path):
    db = tmp_path / "v5.db"
    old = Store.open(db, migrate_to=5)
    old.conn.executescript("""
        INSERT INTO projects (name, key_prefix, path, created_at) VALUES ('p', 'P', '/x', 't');
        INSERT INTO key_counters VALUES ('P', 1);
        INSERT INTO tasks (project_id, key, number, title, created_at, updated_at)
             VALUES (1, 'P-1', 1, 'old task', 't', 't');
        INSERT INTO sessions (id, name, project_id, task_id, provider, backend, created_at,
                              updated_at) VALUES ('s1', 'P-1', 1, 1, 'shell', 'tmux', 't', 't');
    """)
    old.close()
    new = Store.open(db)
    assert new.schema_version() == SCHEMA_VERSION >= 6
    assert new.get_session("s1").done_requested is False  # existing rows: not requested
    project = new.find_project("P")
    kid = new.add_task(project, title="kid", parent_key="P-1").key
    from planeai.services import tasks

    report = tasks.report_done(new, "P-1", session_id="s1", own_task=True)
    assert report.waiting_for == [kid] and report.task.status.value == "todo"
    # the column and its event, written together
    assert new.get_session("s1").done_requested is True
    e = new.events(task_key="P-1")[-1]
    assert (e.kind, e.session_id, e.data) == ("task.done_requested", "s1",
                                              {"open_subtasks": [kid]})
    # not the agent's own task (a person's `task done KEY`): it simply moves
    assert tasks.report_done(new, "P-1").task.status.value == "done"
    new.close()


def test_replace_blockers_is_one_checked_transaction(tmp_path):
    from planeai.errors import ValidationError
    from planeai.services import tasks

    s = Store.open(tmp_path / "b.db")
    project = s.add_project("p", "P", "/x", None)
    a, b, c = (s.add_task(project, title=t).key for t in "abc")
    tasks.add_task(s, project, "d")
    assert tasks.replace_blockers(s, c, [a, b]).blocked_by == [a, b]
    assert tasks.replace_blockers(s, c, [b.lower()]).blocked_by == [b]
    before = s.last_event_id()
    # a cycle refuses the whole edit: the title change is not kept either
    with __import__("pytest").raises(ValidationError, match="cycle"):
        tasks.edit_task(s, b, title="renamed", blocked_by=[c])
    assert s.get_task(b).title == "b" and s.get_task(b).blocked_by == []
    assert s.last_event_id() == before
    assert tasks.edit_task(s, b, title="renamed", blocked_by=[a]).blocked_by == [a]
    s.close()


def test_newer_schema_is_refused(tmp_path, run_cli, planeai_home):
    db = planeai_home / "data" / "planeai.db"
    Store.open(db).close()
    c = sqlite3.connect(db)
    c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    c.close()
    code, _, err = run_cli("project", "list")
    assert code == 1 and "newer than this planeai" in err


def test_corrupt_database_is_a_clear_error(planeai_home):
    db = planeai_home / "data" / "planeai.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not sqlite" * 100)
    r = run_subprocess("project", "list")
    assert r.returncode == 1
    assert b"is damaged (file is not a database)" in r.stderr and b"Traceback" not in r.stderr


def test_pragmas(planeai_home):
    s = Store.open(planeai_home / "db.sqlite")
    assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert s.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000


def test_core_does_not_import_textual_gitpython_keyring():
    code = textwrap.dedent("""
        import sys, json
        import planeai.cli.main, planeai.services.tasks, planeai.services.context
        import planeai.store.repository, planeai.config, planeai.core.models
        from planeai.cli import cmd_task
        print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in
              ('textual', 'git', 'keyring', 'rich', 'libtmux'))))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_task_add_process_does_not_load_heavy_modules(run_cli, repo, tmp_path):
    _add_project(run_cli, repo)
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent("""
        import atexit, sys, json
        def dump():
            heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('textual','git','keyring'))
            sys.stderr.write('HEAVY=' + json.dumps(heavy) + '\\n')
        atexit.register(dump)
        sys.argv = ['planeai', 'task', 'add', 'probe', '--project', 'PLA']
        from planeai.cli.main import main
        main()
    """))
    r = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "PLA-1"
    assert "HEAVY=[]" in r.stderr


def test_one_store_shared_by_threads_while_another_process_writes(run_cli, repo):
    """The dispatcher, its prompt deliveries and the app's workers share one Store. Reads on
    the shared connection interleaved with another thread's BEGIN IMMEDIATE made SQLite say
    "database is locked" at once (and "another row available"), killing the dispatcher."""
    import threading

    from planeai.services import tasks
    from planeai.services.context import open_store

    _add_project(run_cli, repo)
    s = open_store()
    project = s.find_project("PLA")
    for i in range(200):
        tasks.add_task(s, project, f"seed-{i}")
    other = subprocess.Popen([sys.executable, "-c", WORKER, "400", "other"],
                             stdout=subprocess.PIPE, text=True)
    assert other.stdout.readline().strip() == "started"
    errors: list[str] = []

    def guarded(fn, n):
        def run():
            try:
                for _ in range(n):
                    fn()
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(f"{type(e).__name__}: {e}")
        return run

    threads = [threading.Thread(target=guarded(lambda: (s.list_tasks(), s.events(limit=2000)),
                                               60)) for _ in range(2)]
    threads += [threading.Thread(target=guarded(lambda: tasks.add_task(s, project, "w"), 150))
                for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert other.wait(120) == 0
    finally:
        s.close()
    assert errors == []
    with open_store() as s2:
        assert len(s2.list_tasks()) == 200 + 300 + 400
        assert s2.integrity_check() == "ok"
