"""planeai jira sync|list|take: issues of named JQL filters (planeai.services.trackers).

Synced text is hostile: the human output shows it through ``display_row`` (one line, no
control characters) and ``--json`` escapes every non-ASCII character, so neither can carry a
terminal escape sequence.
"""

from __future__ import annotations

import argparse
import json
import sys

from planeai.cli.common import context, print_json, table
from planeai.errors import PlaneaiError


def _ascii_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=True)
    sys.stdout.write("\n")


def _progress(args: argparse.Namespace):
    if not (getattr(args, "progress", False) or sys.stderr.isatty()):
        return None

    def say(name: str, page: int, items: int) -> None:
        print(f"jira sync {name}: page {page}, {items} issues", file=sys.stderr, flush=True)

    return say


def _raise_errors(errors: list[str]) -> None:
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise PlaneaiError(errors[0] + more)


def sync(args: argparse.Namespace) -> int:
    from planeai.services import trackers

    ctx = context()
    trackers.filters_to_sync(ctx.config, args.filter)  # a typo is named before any request
    client = trackers.open_jira(ctx.config, ctx.locations)
    try:
        report = trackers.sync(ctx.store, ctx.config, client, only=args.filter,
                               progress=_progress(args))
    finally:
        client.close()
    if args.json:
        _ascii_json(report.as_dict())
    else:
        for f in report.filters:
            line = (f"{f.name}: {f.items} issues ({f.new} new, {f.updated} updated, "
                    f"{f.unchanged} unchanged), {len(f.gone)} gone, {f.pages} pages")
            if f.taken:
                line += f"; taken: {', '.join(f.taken)}"
            if f.error:
                line += f"; stopped: {trackers.one_line(f.error, 300)}"
            print(line)
        for w in report.writebacks:
            what = w.get("transition") or ("comment" if w["kind"] == "comment" else w["kind"])
            state = f"failed: {trackers.one_line(w['error'], 300)}" if w.get("error") else "posted"
            print(f"{trackers.one_line(w['key'], 32)} ({w['task']}): {what} {state}")
    _raise_errors(report.errors)
    return 0


def list_(args: argparse.Namespace) -> int:
    from planeai.services import trackers

    ctx = context()
    groups = trackers.groups(ctx.store, include_gone=args.all)
    if args.filter:
        groups = [g for g in groups if g.scope == args.filter]
    if args.json:
        _ascii_json([{"filter": g.scope,
                      "last_sync": g.state.last_sync if g.state else None,
                      "last_error": g.state.last_error if g.state else None,
                      "items": [i.as_dict() for i in g.items]} for g in groups])
        return 0
    if not groups:
        print("no Jira issues synced; configure [jira] and run `planeai jira sync`")
        return 0
    for g in groups:
        st = g.state
        when = f"synced {st.last_sync}" if st and st.last_sync else "never synced fully"
        err = f"; last error: {trackers.one_line(st.last_error, 200)}" \
            if st and st.last_error else ""
        print(f"{trackers.one_line(g.scope, 64)} ({len(g.items)} issues, {when}{err})")
        rows = []
        for i in g.items:
            d = trackers.display_row(i)
            rows.append(["  " + d["key"], d["status"], d["priority"], d["assignee"] or "-",
                         d["task"] or "-", (d["gone"] + " " if d["gone"] else "") + d["title"]])
        if rows:
            print(table(rows))
    return 0


def take(args: argparse.Namespace) -> int:
    from planeai.services import trackers

    ctx = context()
    task = trackers.take(ctx.store, ctx.config, args.key, args.project)
    if args.json:
        print_json(task.as_dict())
    else:
        print(f"{task.key} ({task.project_name}): {trackers.one_line(task.title, 80)} "
              f"<- Jira {args.key.strip().upper()}")
    return 0
