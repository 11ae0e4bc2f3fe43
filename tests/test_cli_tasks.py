"""planeai task ...: every command and every bad input, through the real CLI entry point."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest


@pytest.fixture
def project(run_cli, repo: Path) -> Path:
    assert run_cli("project", "add", str(repo))[0] == 0
    return repo


def keys_of(run_cli, *args) -> list[str]:
    code, out, err = run_cli("task", "list", "--json", *args)
    assert code == 0, err
    return [t["key"] for t in json.loads(out)]


def test_add_prints_key_and_json(run_cli, project):
    code, out, err = run_cli("task", "add", "First", cwd=project)
    assert (code, out, err) == (0, "PLA-1\n", "")
    code, out, _ = run_cli("task", "add", "Second", "-d", "details", "-p", "5",
                           "--base-branch", "dev", "--provider", "claude-opus", "--json",
                           cwd=project)
    t = json.loads(out)
    assert t["key"] == "PLA-2" and t["title"] == "Second" and t["description"] == "details"
    assert t["priority"] == 5 and t["base_branch"] == "dev" and t["provider"] == "claude-opus"
    assert t["status"] == "todo" and t["ready"] is True and t["project"] == "planeai"


def test_description_from_file_and_stdin(run_cli, project, tmp_path):
    f = tmp_path / "desc.md"
    f.write_text("from a file\nline 2\n")
    run_cli("task", "add", "A", "--description-file", str(f), cwd=project)
    run_cli("task", "add", "B", "-", cwd=project, stdin="from stdin ✓".encode())
    assert json.loads(run_cli("task", "show", "PLA-1", "--json")[1])["description"] == \
        "from a file\nline 2\n"
    assert json.loads(run_cli("task", "show", "PLA-2", "--json")[1])["description"] == \
        "from stdin ✓"
    code, _, err = run_cli("task", "add", "C", "-", cwd=project, stdin=b"\xff\xfe")
    assert code == 1 and "not UTF-8" in err
    code, _, err = run_cli("task", "add", "C", "--description-file", str(tmp_path / "no"),
                           cwd=project)
    assert code == 1 and "cannot read description file" in err
    assert keys_of(run_cli, "--project", "PLA") == ["PLA-1", "PLA-2"]


def test_blockers_ready_and_done(run_cli, project):
    for title in ("a", "b", "c"):
        run_cli("task", "add", title, cwd=project)
    assert run_cli("task", "block", "PLA-3", "--by", "PLA-1", "PLA-2")[0] == 0
    assert keys_of(run_cli, "--ready", "--project", "PLA") == ["PLA-1", "PLA-2"]
    run_cli("task", "done", "PLA-1")
    assert keys_of(run_cli, "--ready", "--project", "PLA") == ["PLA-2"]
    code, out, _ = run_cli("task", "show", "PLA-3")
    assert "blocked by:  PLA-1 (done), PLA-2" in out
    run_cli("task", "move", "PLA-2", "done")
    assert keys_of(run_cli, "--ready", "--project", "PLA") == ["PLA-3"]
    assert run_cli("task", "unblock", "PLA-3", "--by", "PLA-2")[0] == 0
    assert json.loads(run_cli("task", "show", "PLA-3", "--json")[1])["blocked_by"] == ["PLA-1"]
    assert run_cli("task", "unblock", "PLA-3")[0] == 0
    assert json.loads(run_cli("task", "show", "PLA-3", "--json")[1])["blocked_by"] == []


def test_ready_orders_by_priority_then_age(run_cli, project):
    run_cli("task", "add", "low", "-p", "1", cwd=project)
    run_cli("task", "add", "high", "-p", "9", cwd=project)
    run_cli("task", "add", "low too", "-p", "1", cwd=project)
    assert keys_of(run_cli, "--ready", "--project", "PLA") == ["PLA-2", "PLA-1", "PLA-3"]


def test_blocked_by_across_projects(run_cli, project, tmp_path):
    from conftest import make_repo

    other = make_repo(tmp_path / "other")
    run_cli("project", "add", str(other), "--key", "OTH")
    run_cli("task", "add", "theirs", "--project", "OTH")
    code, out, err = run_cli("task", "add", "mine", "--blocked-by", "oth-1", cwd=project)
    assert code == 0, err
    t = json.loads(run_cli("task", "show", "PLA-1", "--json")[1])
    assert t["blocked_by"] == ["OTH-1"] and t["ready"] is False


def test_cycle_is_rejected_and_named(run_cli, project):
    for title in ("a", "b", "c"):
        run_cli("task", "add", title, cwd=project)
    run_cli("task", "block", "PLA-2", "--by", "PLA-1")
    run_cli("task", "block", "PLA-3", "--by", "PLA-2")
    code, _, err = run_cli("task", "block", "PLA-1", "--by", "PLA-3")
    assert code == 1
    assert "cycle: PLA-1 -> PLA-3 -> PLA-2 -> PLA-1" in err
    code, _, err = run_cli("task", "block", "PLA-1", "--by", "PLA-1")
    assert code == 1 and "cannot block itself" in err
    assert json.loads(run_cli("task", "show", "PLA-1", "--json")[1])["blocked_by"] == []


def test_parent_tree_and_descendant_check(run_cli, project):
    run_cli("task", "add", "root", cwd=project)
    run_cli("task", "add", "child", "--parent", "PLA-1", cwd=project)
    run_cli("task", "add", "grandchild", "--parent", "PLA-2", cwd=project)
    code, out, _ = run_cli("task", "list", "--tree", "--project", "PLA")
    lines = out.splitlines()
    assert [re.search(r"PLA-\d+", ln).group() for ln in lines] == ["PLA-1", "PLA-2", "PLA-3"]
    assert lines[1].index("child") < lines[2].index("grandchild")
    code, _, err = run_cli("task", "edit", "PLA-1", "--parent", "PLA-3")
    assert code == 1 and "its own ancestor" in err
    code, _, err = run_cli("task", "edit", "PLA-1", "--parent", "PLA-1")
    assert code == 1 and "own ancestor" in err
    assert json.loads(run_cli("task", "show", "PLA-1", "--json")[1])["parent"] is None
    assert run_cli("task", "edit", "PLA-3", "--no-parent")[0] == 0
    assert json.loads(run_cli("task", "show", "PLA-3", "--json")[1])["parent"] is None


def test_edit_move_review_delete(run_cli, project):
    run_cli("task", "add", "old", cwd=project)
    code, out, _ = run_cli("task", "edit", "PLA-1", "--title", "new", "-p", "7", "-d", "x",
                           "--json")
    t = json.loads(out)
    assert (t["title"], t["priority"], t["description"]) == ("new", 7, "x")
    assert run_cli("task", "move", "PLA-1", "in-progress")[1] == "PLA-1 -> in_progress\n"
    assert run_cli("task", "review", "PLA-1")[1] == "PLA-1 -> in_review\n"
    code, _, err = run_cli("task", "edit", "PLA-1")
    assert code == 1 and "nothing to change" in err
    run_cli("task", "add", "kid", "--parent", "PLA-1", cwd=project)
    code, _, err = run_cli("task", "delete", "PLA-1")
    assert code == 1 and "has subtasks PLA-2" in err
    code, out, _ = run_cli("task", "delete", "PLA-1", "--recursive")
    assert code == 0 and out == "deleted PLA-2, PLA-1\n"
    assert keys_of(run_cli, "--project", "PLA") == []
    # keys are never reused
    assert run_cli("task", "add", "again", cwd=project)[1] == "PLA-3\n"


def test_list_filters(run_cli, project):
    run_cli("task", "add", "a", cwd=project)
    run_cli("task", "add", "b", cwd=project)
    run_cli("task", "move", "PLA-2", "done")
    assert keys_of(run_cli, "--status", "done", "--project", "PLA") == ["PLA-2"]
    assert keys_of(run_cli, "--status", "todo", "--status", "done", "--project", "PLA") == \
        ["PLA-1", "PLA-2"]
    code, out, _ = run_cli("task", "list", "--project", "PLA")
    assert "[ ]  PLA-1  todo" in out and "[x]  PLA-2  done" in out


def test_session_context_defaults(run_cli, project, monkeypatch, tmp_path):
    run_cli("task", "add", "parent task", cwd=project)
    monkeypatch.chdir(tmp_path)  # outside any repo: the env must carry the context
    monkeypatch.setenv("PLANEAI_PROJECT", "planeai")
    monkeypatch.setenv("PLANEAI_TASK_KEY", "PLA-1")
    code, out, err = run_cli("task", "add", "sub from agent", "--json")
    assert code == 0, err
    t = json.loads(out)
    assert t["parent"] == "PLA-1" and t["project"] == "planeai"
    t = json.loads(run_cli("task", "add", "sibling", "--no-parent", "--json")[1])
    assert t["parent"] is None
    # the agent reports done while its subtask PLA-2 is open: it waits for it, recorded
    assert run_cli("task", "done")[1] == \
        "PLA-1 stays in progress until its subtasks PLA-2 are done\n"
    assert json.loads(run_cli("task", "show", "PLA-1", "--json")[1])["status"] == "todo"
    events = json.loads(run_cli("events", "--json", "--task", "PLA-1")[1])
    assert events[-1]["kind"] == "task.done_requested"
    assert events[-1]["data"] == {"open_subtasks": ["PLA-2"]}
    run_cli("task", "done", "PLA-2")
    assert run_cli("task", "done")[1] == "PLA-1 -> done\n"


@pytest.mark.parametrize("args, message", [
    (["task", "add", ""], "title is empty"),
    (["task", "add", "   "], "title is empty"),
    (["task", "add", "x" * 301], "at most 300 accepted"),
    (["task", "add", "bell\x07"], "control character"),
    (["task", "add", "two\nlines"], "control character"),
    (["task", "add", "ok", "-d", "esc\x1b[31m"], "control character"),
    (["task", "add", "ok", "--blocked-by", "PLA-99"], "no task PLA-99"),
    (["task", "add", "ok", "--blocked-by", "nonsense"], "is not a task key"),
    (["task", "add", "ok", "--parent", "PLA-42"], "no task PLA-42"),
    (["task", "add", "ok", "--project", "nope"], "no project 'nope'"),
    (["task", "add", "ok", "-p", "5000"], "out of range"),
    (["task", "add", "ok", "--provider", "Bad Name"], "provider 'Bad Name' is not accepted"),
    (["task", "add", "ok", "--base-branch", "a..b"], "not a valid git branch name"),
    (["task", "show", "PLA-77"], "no task PLA-77"),
    (["task", "move", "PLA-1", "started"], "unknown status 'started'; accepted: todo"),
    (["task", "done", "XYZ-1"], "no task XYZ-1"),
    (["task", "block", "PLA-1", "--by", "PLA-9"], "no task PLA-9"),
    (["task", "unblock", "PLA-1", "--by", "PLA-1"], "is not blocked by"),
])
def test_bad_input_one_line_exit_1_nothing_written(run_cli, project, args, message):
    run_cli("task", "add", "existing", cwd=project)
    before = run_cli("events", "--json")[1]
    code, out, err = run_cli(*args, cwd=project)
    assert code == 1
    assert message in err
    assert err.startswith("planeai: error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    assert run_cli("events", "--json")[1] == before  # nothing written
    assert keys_of(run_cli, "--project", "PLA") == ["PLA-1"]


def test_usage_errors_exit_2(run_cli, project):
    code, _, err = run_cli("task", "add")
    assert code == 2 and "usage error" in err
    code, _, err = run_cli("task", "add", "x", "-p", "high")
    assert code == 2
    code, _, err = run_cli("task", "frobnicate")
    assert code == 2


def test_no_project_outside_repo(run_cli, tmp_path):
    code, _, err = run_cli("task", "add", "x", cwd=tmp_path)
    assert code == 1 and "no project here" in err


def test_event_log_records_every_change(run_cli, project):
    run_cli("task", "add", "a", cwd=project)
    run_cli("task", "add", "b", cwd=project)
    run_cli("task", "edit", "PLA-1", "--title", "A")
    run_cli("task", "move", "PLA-1", "in_progress")
    run_cli("task", "block", "PLA-2", "--by", "PLA-1")
    run_cli("task", "delete", "PLA-2")
    events = json.loads(run_cli("events", "--json")[1])
    assert [(e["kind"], e["task"]) for e in events] == [
        ("project.added", None), ("task.created", "PLA-1"), ("task.created", "PLA-2"),
        ("task.edited", "PLA-1"), ("task.moved", "PLA-1"), ("task.blocked", "PLA-2"),
        ("task.deleted", "PLA-2")]
    assert events[4]["data"] == {"from": "todo", "to": "in_progress"}


def test_events_limit_shows_the_newest_and_oldest_is_a_flag(run_cli, project):
    for i in range(5):
        run_cli("task", "add", f"t{i}")
    every = json.loads(run_cli("events", "--json", "--limit", "1000")[1])
    newest = json.loads(run_cli("events", "--json", "--limit", "2")[1])
    oldest = json.loads(run_cli("events", "--json", "--limit", "2", "--oldest")[1])
    assert [e["id"] for e in newest] == [e["id"] for e in every[-2:]]  # oldest first
    assert [e["id"] for e in oldest] == [e["id"] for e in every[:2]]
    code, out, err = run_cli("events", "--limit", "0")
    assert code == 1 and err.count("\n") == 1 and "--limit 0" in err and not out


def test_mentions_are_checked_where_they_are_written(run_cli, project):
    """A misspelt agent or skill in task text is refused with a suggestion, nothing written;
    an @word that resembles no agent (a decorator, a package scope) is plain text."""
    before = run_cli("task", "list", "--json")[1]
    code, out, err = run_cli("task", "add", "Port the parser @gemini-flsh", cwd=project)
    assert code == 1 and not out and err.count("\n") == 1, err
    assert "@gemini-flsh" in err and "did you mean" in err and "gemini-flash" in err
    code, _, err = run_cli("task", "add", "Look", "-d", "then @claude:nosuchskill", cwd=project)
    assert code == 1 and "unknown skill 'nosuchskill'" in err and "description" in err
    code, _, err = run_cli("task", "add", "Fix @claud please", cwd=project)
    assert code == 1 and "did you mean @claude" in err
    assert run_cli("task", "list", "--json")[1] == before  # nothing written
    code, out, err = run_cli("task", "add", "Use @dataclass and @types/node", "-d",
                             "mail me@example.com; @review it; @claude-opus:review", cwd=project)
    assert code == 0, err
    key = out.strip()
    code, _, err = run_cli("task", "edit", key, "--title", "Now @codex-gtp5", cwd=project)
    assert code == 1 and "codex" in err, err
    assert json.loads(run_cli("task", "show", key, "--json")[1])["title"].startswith("Use @")
