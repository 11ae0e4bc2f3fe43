"""planeai project ...: registering repos, keys, removal, errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import make_repo


def test_add_list_show_from_inside_repo(run_cli, repo: Path):
    code, out, err = run_cli("project", "add", cwd=repo)
    assert code == 0, err
    assert "added project planeai (PLA)" in out
    code, out, _ = run_cli("project", "list", "--json")
    projects = json.loads(out)
    assert [(p["name"], p["key"], p["path"]) for p in projects] == [
        ("planeai", "PLA", str(repo.resolve()))]
    assert projects[0]["default_branch"] == "main"
    code, out, _ = run_cli("project", "show", cwd=repo / ".git")  # any dir inside the repo
    assert code == 0 and "planeai (PLA)" in out


def test_add_subdirectory_registers_the_top_level(run_cli, repo: Path):
    (repo / "src" / "deep").mkdir(parents=True)
    code, out, _ = run_cli("project", "add", str(repo / "src" / "deep"))
    assert code == 0
    assert f"at {repo.resolve()}" in out


def test_key_prefix_defaults_and_uniqueness(run_cli, tmp_path: Path):
    a = make_repo(tmp_path / "plane-api")
    b = make_repo(tmp_path / "plane-app")
    c = make_repo(tmp_path / "other")
    assert run_cli("project", "add", str(a))[0] == 0
    assert run_cli("project", "add", str(b))[0] == 0
    code, out, _ = run_cli("project", "list", "--json")
    keys = {p["name"]: p["key"] for p in json.loads(out)}
    assert keys == {"plane-api": "PA", "plane-app": "PA2"}
    code, _, err = run_cli("project", "add", str(c), "--key", "pa")
    assert code == 1 and "key 'PA' is taken by project 'plane-api'" in err


def test_bad_project_input(run_cli, tmp_path: Path, repo: Path):
    plain = tmp_path / "plain"
    plain.mkdir()
    code, _, err = run_cli("project", "add", str(plain))
    assert code == 1 and "is not a git repository" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    code, _, err = run_cli("project", "add", str(tmp_path / "missing"))
    assert code == 1 and "does not exist" in err
    assert run_cli("project", "add", str(repo))[0] == 0
    code, _, err = run_cli("project", "add", str(repo))
    assert code == 1 and "already registered" in err
    other = make_repo(tmp_path / "x")
    code, _, err = run_cli("project", "add", str(other), "--name", "planeai")
    assert code == 1 and "name 'planeai' is taken" in err
    code, _, err = run_cli("project", "add", str(other), "--key", "9bad")
    assert code == 1 and "key prefix '9bad' is not accepted" in err
    code, _, err = run_cli("project", "show", "nope")
    assert code == 1 and "no project 'nope'" in err
    # nothing half-written: still one project
    code, out, _ = run_cli("project", "list", "--json")
    assert len(json.loads(out)) == 1


def test_remove_keeps_tasks_and_add_restores(run_cli, repo: Path):
    run_cli("project", "add", str(repo))
    run_cli("task", "add", "keep me", "--project", "PLA")
    code, out, _ = run_cli("project", "remove", "planeai")
    assert code == 0 and "tasks are kept" in out
    assert json.loads(run_cli("project", "list", "--json")[1]) == []
    listed = json.loads(run_cli("project", "list", "--all", "--json")[1])
    assert listed[0]["archived"] is True
    code, out, _ = run_cli("project", "add", str(repo))
    assert code == 0 and "restored project planeai" in out
    code, out, _ = run_cli("task", "show", "PLA-1")
    assert code == 0 and "keep me" in out


def test_purge_deletes_tasks_and_keys_are_never_reused(run_cli, repo: Path):
    run_cli("project", "add", str(repo))
    assert run_cli("task", "add", "one", "--project", "PLA")[1].strip() == "PLA-1"
    code, out, _ = run_cli("project", "remove", "PLA", "--purge")
    assert code == 0 and "deleted its 1 tasks" in out
    assert run_cli("task", "show", "PLA-1")[0] == 1
    run_cli("project", "add", str(repo))
    assert run_cli("task", "add", "two", "--project", "PLA")[1].strip() == "PLA-2"


def test_project_found_from_linked_worktree(run_cli, repo: Path, tmp_path: Path):
    run_cli("project", "add", str(repo))
    wt = tmp_path / "wt"
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", "-b", "x", str(wt)],
                   check=True)
    code, out, err = run_cli("task", "add", "from worktree", cwd=wt / ".")
    assert code == 0, err
    assert out.strip() == "PLA-1"
