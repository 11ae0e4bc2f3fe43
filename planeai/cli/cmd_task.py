"""planeai task ...  (the hot path: agents call `task add` many times, concurrently)"""

from __future__ import annotations

import argparse
import os

from planeai.cli.common import (
    context, from_sandbox, print_json, read_description, session_task_key, store, table)
from planeai.core.models import STATUS_ORDER, Task
from planeai.errors import ValidationError
from planeai.services import tasks as svc
from planeai.services.context import resolve_project

_MARK = {"todo": " ", "in_progress": ">", "in_review": "?", "done": "x"}


def add(args: argparse.Namespace) -> int:
    description = read_description(args) or ""
    parent = args.parent
    if parent is None and not args.no_parent:
        parent = session_task_key()  # inside a session: a subtask of the session's task
    defaults = svc.TaskDefaults.of(context().config)
    with store() as s:
        project = resolve_project(s, args.project)
        task = svc.add_task(
            s, project, args.title, description=description, priority=args.priority,
            blocked_by=args.blocked_by, parent=parent, base_branch=args.base_branch,
            provider=args.provider, defaults=defaults, sandbox=args.sandbox,
            from_sandbox=from_sandbox(), host=args.host,
        )
    if args.json:
        print_json(task.as_dict())
    else:
        print(task.key)
    return 0


def _line(t: Task, indent: str = "") -> list[str]:
    flags = []
    if t.open_blockers:
        flags.append("blocked by " + ",".join(t.open_blockers))
    if t.provider:
        flags.append("@" + t.provider)
    title = indent + t.title + (f"  [{'; '.join(flags)}]" if flags else "")
    return [f"[{_MARK[t.status.value]}]", t.key, t.status.value, f"P{t.priority}", title]


def _tree_rows(tasks: list[Task]) -> list[list[str]]:
    keys = {t.key for t in tasks}
    kids: dict[str | None, list[Task]] = {}
    for t in tasks:
        parent = t.parent_key if t.parent_key in keys else None
        kids.setdefault(parent, []).append(t)
    rows: list[list[str]] = []

    def walk(parent: str | None, depth: int) -> None:
        for t in kids.get(parent, []):
            rows.append(_line(t, "  " * depth + ("└ " if depth else "")))
            walk(t.key, depth + 1)

    walk(None, 0)
    return rows


def list(args: argparse.Namespace) -> int:  # noqa: A001
    with store() as s:
        if args.all_projects:
            projects = None
        else:
            p = resolve_project(s, args.project, required=False)
            projects = [p] if p else None
        tasks = svc.list_tasks(s, projects=projects, statuses=args.status, ready=args.ready)
    if args.ready:
        tasks = svc.ready_queue(tasks)
    else:
        order = {st: i for i, st in enumerate(STATUS_ORDER)}
        tasks.sort(key=lambda t: (t.project_name, order[t.status], -t.priority, t.id))
    if args.json:
        print_json([t.as_dict() for t in tasks])
        return 0
    if not tasks:
        print("no tasks")
        return 0
    rows = _tree_rows(tasks) if args.tree else [_line(t) for t in tasks]
    print(table(rows))
    return 0


def show(args: argparse.Namespace) -> int:
    with store() as s:
        t = svc.get(s, args.key)
        children = svc.subtasks(s, t.key)
        events = svc.history(s, t.key, limit=50)
    if args.json:
        print_json(t.as_dict() | {"subtasks": children,
                                  "events": [e.as_dict() for e in events]})
        return 0
    print(f"{t.key}  {t.title}")
    print(f"  project:     {t.project_name}")
    print(f"  status:      {t.status.value}" + ("  (ready)" if t.ready else ""))
    print(f"  priority:    {t.priority}")
    if t.blocked_by:
        open_ = set(t.open_blockers)
        print("  blocked by:  " + ", ".join(k + ("" if k in open_ else " (done)")
                                            for k in t.blocked_by))
    if t.parent_key:
        print(f"  parent:      {t.parent_key}")
    if children:
        print(f"  subtasks:    {', '.join(children)}")
    if t.base_branch:
        print(f"  base branch: {t.base_branch}")
    if t.provider:
        print(f"  provider:    {t.provider}")
    if t.pr_url:
        print(f"  pull request: {t.pr_url}")
    if t.sandbox is not None:
        print(f"  sandbox:     {'always' if t.sandbox else 'never'}")
    if t.host:
        print(f"  host:        {t.host}")
    print(f"  created:     {t.created_at}")
    print(f"  updated:     {t.updated_at}")
    if t.description:
        print()
        print(t.description)
    return 0


def edit(args: argparse.Namespace) -> int:
    description = read_description(args)
    if all(v is None for v in (args.title, description, args.priority, args.parent,
                               args.base_branch, args.provider, args.sandbox, args.host)) \
            and not args.no_parent:
        raise ValidationError("nothing to change: give --title, -d, -p, --parent, --no-parent, "
                              "--base-branch, --provider, --host or a --sandbox flag")
    sandbox = ... if args.sandbox is None else (None if args.sandbox == "config"
                                                else args.sandbox)
    with store() as s:
        t = svc.edit_task(s, args.key, title=args.title, description=description,
                          priority=args.priority, parent=args.parent,
                          clear_parent=args.no_parent, base_branch=args.base_branch,
                          provider=args.provider, sandbox=sandbox,
                          from_sandbox=from_sandbox(),
                          host=... if args.host is None else (None if args.host == ""
                                                              else args.host))
    if args.json:
        print_json(t.as_dict())
    else:
        print(f"{t.key} updated")
    return 0


def _move(key: str, status: str) -> int:
    with store() as s:
        t = svc.move(s, key, status)
    print(f"{t.key} -> {t.status.value}")
    return 0


def move(args: argparse.Namespace) -> int:
    return _move(args.key, args.status)


def _own_key(args: argparse.Namespace) -> str:
    key = args.key or session_task_key()
    if not key:
        raise ValidationError(
            "which task? give a KEY (outside a session PLANEAI_TASK_KEY is unset)")
    return key


def done(args: argparse.Namespace) -> int:
    key = _own_key(args)
    with store() as s:
        # the agent reporting its own task: with subtasks still open, it stays in progress
        report = svc.report_done(s, key, own_task=key == session_task_key(),
                                 session_id=os.environ.get("PLANEAI_SESSION_ID") or None)
    if report.waiting_for:
        print(f"{report.task.key} stays in progress until its subtasks "
              f"{', '.join(report.waiting_for)} are done")
    else:
        print(f"{report.task.key} -> {report.task.status.value}")
    return 0


def review(args: argparse.Namespace) -> int:
    return _move(_own_key(args), "in_review")


def block(args: argparse.Namespace) -> int:
    with store() as s:
        t = svc.block(s, args.key, args.by)
    print(f"{t.key} blocked by {', '.join(t.blocked_by)}")
    return 0


def unblock(args: argparse.Namespace) -> int:
    with store() as s:
        t = svc.unblock(s, args.key, args.by)
    print(f"{t.key} " + (f"still blocked by {', '.join(t.blocked_by)}" if t.blocked_by
                         else "has no blockers"))
    return 0


def delete(args: argparse.Namespace) -> int:
    with store() as s:
        deleted = svc.delete(s, args.key, recursive=args.recursive)
    print("deleted " + ", ".join(deleted))
    return 0
