"""planeai plane sync / list / take / serve / poll: Plane work items and planeai as a Plane
agent (planeai.services.plane_sync, planeai.services.plane_agent)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from planeai.cli.common import context, print_json, table


def _client():
    from planeai.services.plane_sync import plane_client

    ctx = context()
    return plane_client(ctx.config, ctx.locations)


def _progress(asked: bool):
    """Progress on stderr: a line per page (asked, or stderr is a terminal)."""
    if not (asked or sys.stderr.isatty()):
        return None

    def show(scope: str, count: int) -> None:
        print(f"plane: project {scope}: {count} work items so far", file=sys.stderr,
              flush=True)

    return show


def sync(args: argparse.Namespace) -> int:
    from planeai.services.plane_sync import PlaneSync, inert_line

    ctx = context()
    progress = _progress(args.progress)
    results = PlaneSync(ctx.store, ctx.config, _client(), progress=progress).sync()
    if args.json:
        print_json([r.as_dict() for r in results])
    else:
        for r in results:
            line = (f"{r.project}: {r.fetched} work items ({r.new} new, {r.updated} updated, "
                    f"{len(r.gone)} gone" + (f", {len(r.taken)} taken" if r.taken else "") + ")")
            if r.error:
                line += f"; stopped: {inert_line(r.error, 300)}"
            print(line)
    return 1 if any(r.error for r in results) else 0


def list_(args: argparse.Namespace) -> int:
    from planeai.services.plane_serve import FEED_SCOPE
    from planeai.services.plane_sync import SOURCE, inert_line

    store = context().store
    items = store.tracker_items(SOURCE, include_gone=args.all)
    if args.json:
        print_json([i.as_dict() for i in items])
        return 0
    for st in store.tracker_sync_states(SOURCE):
        if st.scope == FEED_SCOPE:
            continue
        error = f"; last error: {inert_line(st.last_error, 200)}" if st.last_error else ""
        print(f"project {inert_line(st.scope, 40)}: synced {st.last_sync or 'never'}, "
              f"{st.items or 0} items{error}")
    if not items:
        print("no Plane work items synced; run `planeai plane sync`")
        return 0
    rows = [["KEY", "STATUS", "PRIORITY", "TASK", "TITLE"]]
    for i in items:
        rows.append([inert_line(i.external_key, 20), inert_line(i.status or "-", 20),
                     inert_line(i.priority or "-", 10),
                     (i.task_key or "-") + (" (gone)" if i.gone else ""),
                     inert_line(i.title, 80)])
    print(table(rows))
    return 0


def take(args: argparse.Namespace) -> int:
    from planeai.services.plane_sync import PlaneSync

    ctx = context()
    task = PlaneSync(ctx.store, ctx.config, None).take(args.ref, args.project)
    if args.json:
        print_json(task.as_dict())
    else:
        print(task.key)
    return 0


def _serve(args: argparse.Namespace, *, port: int | None, poll: bool) -> int:
    from planeai.errors import PlaneaiError
    from planeai.services.plane_serve import run_service
    from planeai.services.plane_sync import webhook_secret

    ctx = context()
    secret = None
    if port is not None:
        secret = webhook_secret(ctx.config, ctx.locations)
        if not secret:
            raise PlaneaiError("no webhook secret: store it with `planeai secret set plane "
                               "PLANE_WEBHOOK_SECRET` or set PLANE_WEBHOOK_SECRET (every "
                               "delivery would be refused); or use `planeai plane poll`")
    client = _client()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def ready(bound: int | None) -> None:
        if bound is not None:
            print(f"planeai: listening for Plane webhooks on http://{args.host}:{bound}/",
                  flush=True)
        if poll:
            print(f"planeai: polling workspace {ctx.config.plane.workspace}'s activity feed "
                  f"every {ctx.config.plane.poll_interval:g} s", flush=True)

    try:
        run_service(ctx.manager, client, stop=stop, host=args.host, port=port, secret=secret,
                    poll=poll, ready=ready)
    finally:
        client.close()
    return 0


def serve(args: argparse.Namespace) -> int:
    return _serve(args, port=args.port, poll=args.poll)


def poll(args: argparse.Namespace) -> int:
    args.host = "127.0.0.1"
    return _serve(args, port=None, poll=True)
