"""planeai host add | list | check | remove: machines that run agents over SSH."""

from __future__ import annotations

import argparse

from planeai.cli.common import context, print_json, store, table


def add(args: argparse.Namespace) -> int:
    from planeai.services import hosts

    ctx = context()
    table_ = hosts.table_for(args.name, args.ssh, port=args.port,
                             max_sessions=args.max_sessions, root=args.root,
                             repos=hosts.parse_repo_args(args.repo),
                             ssh_config=args.ssh_config,
                             connect_timeout=args.connect_timeout)
    host = hosts.add(ctx.config, ctx.locations.config_file, args.name, table_)
    print(f"added host {host.name} ({host.ssh}) to {ctx.locations.config_file}; "
          f"`planeai host check {host.name}` tries it")
    return 0


def list_(args: argparse.Namespace) -> int:
    from planeai.services import hosts

    from planeai.services import host_state

    found = hosts.all_hosts(context().config)
    with store() as s:
        down = host_state.down_hosts(s)
    if args.json:
        print_json([hosts.as_dict(h) | {"down": h.name in down,
                                        "down_reason": down.get(h.name, {}).get("reason")}
                    for h in found])
        return 0
    if not found:
        print("no hosts; `planeai host add NAME user@machine` adds one")
        return 0
    rows = [["NAME", "SSH", "PORT", "SESSIONS", "ENABLED", "STATE", "ROOT", "REPOS"]]
    for h in found:
        rows.append([h.name, h.ssh, str(h.port or "-"), str(h.max_sessions),
                     "yes" if h.enabled else "no", "down" if h.name in down else "-", h.root,
                     ", ".join(f"{k}={v}" for k, v in sorted(h.repos.items())) or "-"])
    print(table(rows))
    return 0


def check(args: argparse.Namespace) -> int:
    from planeai.services import hosts

    ctx = context()
    host = hosts.get(ctx.config, args.name)
    items = hosts.check(host, ctx.locations, hosts.agents_to_probe())
    missing = [i.name for i in items if i.required and not i.ok]
    if args.json:
        print_json({"host": host.name, "ok": not missing,
                    "items": [i.as_dict() for i in items]})
    else:
        rows = []
        for i in items:
            state = "ok" if i.ok else ("MISSING" if i.required else "-")
            rows.append([i.name, state, i.version or "-", i.detail])
        print(table(rows))
        if missing:
            print(f"host {host.name} cannot run sessions: {', '.join(missing)} missing there")
    return 1 if missing else 0


def remove(args: argparse.Namespace) -> int:
    from planeai.services import hosts

    ctx = context()
    hosts.remove(ctx.config, ctx.locations.config_file, ctx.locations, args.name)
    print(f"removed host {args.name} from {ctx.locations.config_file}")
    return 0
