"""planeai project ..."""

from __future__ import annotations

import argparse

from planeai.cli.common import print_json, store, table


def add(args: argparse.Namespace) -> int:
    from planeai.services.projects import add_project

    with store() as s:
        project, restored = add_project(s, args.path, name=args.name, key=args.key)
    if args.json:
        print_json(project.as_dict())
    elif restored:
        print(f"restored project {project.name} ({project.key_prefix}) at {project.path}")
    else:
        print(f"added project {project.name} ({project.key_prefix}) at {project.path}")
    return 0


def list(args: argparse.Namespace) -> int:  # noqa: A001 - the command is called list
    with store() as s:
        projects = s.list_projects(include_archived=args.all)
        counts = {p.id: s.project_task_counts(p.id) for p in projects}
    if args.json:
        print_json([p.as_dict() | {"tasks": counts[p.id]} for p in projects])
        return 0
    if not projects:
        print("no projects yet: `planeai project add PATH` registers a git repo")
        return 0
    rows = [["NAME", "KEY", "TASKS", "PATH"]]
    for p in projects:
        n = sum(counts[p.id].values())
        name = p.name + (" (removed)" if p.archived else "")
        rows.append([name, p.key_prefix, str(n), p.path])
    print(table(rows))
    return 0


def _find(s, ref: str | None):
    from planeai.services.context import resolve_project

    return resolve_project(s, ref)


def show(args: argparse.Namespace) -> int:
    with store() as s:
        p = _find(s, args.project)
        counts = s.project_task_counts(p.id)
    if args.json:
        print_json(p.as_dict() | {"tasks": counts})
        return 0
    print(f"{p.name} ({p.key_prefix})")
    print(f"  path:           {p.path}")
    print(f"  default branch: {p.default_branch or '-'}")
    tasks = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
    print(f"  tasks:          {tasks}")
    return 0


def remove(args: argparse.Namespace) -> int:
    from planeai.services import projects

    with store() as s:
        p = projects.find(s, args.project)
        n = projects.remove_project(s, p, purge=args.purge)
    if args.purge:
        print(f"removed project {p.name} and deleted its {n} tasks")
    else:
        print(f"removed project {p.name}; its tasks are kept "
              f"(`planeai project add {p.path}` restores it)")
    return 0
