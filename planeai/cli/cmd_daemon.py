"""planeai daemon start | stop | status | restart."""

from __future__ import annotations

import argparse
import sys
import time

from planeai.errors import ConflictError


def _paths():
    from planeai.services import daemon

    return daemon.paths()


def start(args: argparse.Namespace) -> int:
    from planeai.services import daemon

    paths = _paths()
    pid = daemon.running_pid(paths)
    if pid is not None:
        print(f"daemon already running (pid {pid}), socket {paths.socket}")
        return 0
    pid = daemon.start(paths, scrollback=_config(args).daemon.scrollback)
    print(f"daemon started (pid {pid}), socket {paths.socket}, log {paths.log}")
    return 0


def _config(args: argparse.Namespace):
    from planeai.cli.common import context

    return context().config


def _live_sessions(paths) -> list[str] | None:
    from planeai.services import daemon

    return daemon.live_sessions(paths)


def _confirm_stop(paths, force: bool) -> None:
    live = _live_sessions(paths)
    if not live or force:
        return
    names = ", ".join(live)
    what = f"{len(live)} running session{'s' if len(live) != 1 else ''} ({names})"
    them = "it" if len(live) == 1 else "them"
    if not sys.stdin.isatty():
        raise ConflictError(f"the daemon has {what}; stopping the daemon ends {them}: "
                            "pass --force to stop anyway")
    try:
        answer = input(f"The daemon has {what}. Stopping the daemon ends {them}. Stop? [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise ConflictError("not stopped")


def stop(args: argparse.Namespace) -> int:
    from planeai.services import daemon

    paths = _paths()
    if daemon.pid_on_file(paths) is None and _live_sessions(paths) is None:
        print("daemon not running")
        return 0
    _confirm_stop(paths, args.force)
    pid = daemon.stop(paths)
    print(f"daemon stopped (pid {pid})")
    return 0


def restart(args: argparse.Namespace) -> int:
    from planeai.services import daemon

    paths = _paths()
    if daemon.pid_on_file(paths) is not None or _live_sessions(paths) is not None:
        _confirm_stop(paths, args.force)
        daemon.stop(paths)
    return start(args)


def status(args: argparse.Namespace) -> int:
    from planeai.cli.common import print_json, table
    from planeai.services import daemon

    paths = _paths()
    st = daemon.status(paths)
    if st is None:
        if getattr(args, "json", False):
            print_json({"running": False, "socket": str(paths.socket)})
        else:
            print(f"daemon not running (socket {paths.socket})")
        return 3
    if getattr(args, "json", False):
        print_json({"running": True, **st})
        return 0
    up = int(time.time() - st["started"])
    print(f"daemon running (pid {st['pid']}, up {up // 3600}h{up // 60 % 60:02d}m{up % 60:02d}s)")
    print(f"socket {st['socket']}  log {paths.log}")
    print(f"clients {st['clients']}  dropped {st['dropped']}  refused {st['rejected']}")
    if st["sessions"]:
        rows = [["SESSION", "PID", "STATE"]]
        for s in st["sessions"]:
            state = "running" if s["alive"] else f"exited ({s['exit_code']})"
            rows.append([s["name"], str(s["pid"]), state])
        print(table(rows))
    else:
        print("no sessions")
    return 0
