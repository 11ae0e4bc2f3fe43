"""planeai daemon start | stop | status | restart."""

from __future__ import annotations

import argparse
import sys
import time

from planeai.errors import ConflictError


def _paths():
    from planeai.daemon import daemon_paths

    return daemon_paths()


def start(args: argparse.Namespace) -> int:
    from planeai.daemon.client import DaemonClient, DaemonNotRunning, start_daemon

    paths = _paths()
    try:
        c = DaemonClient(paths.socket)
        pid = c.hello["pid"]  # type: ignore[index]
        c.close()
        print(f"daemon already running (pid {pid}), socket {paths.socket}")
        return 0
    except DaemonNotRunning:
        pass
    pid = start_daemon(paths, extra_args=["--scrollback", str(_config(args)["daemon.scrollback"])])
    print(f"daemon started (pid {pid}), socket {paths.socket}, log {paths.log}")
    return 0


def _config(args: argparse.Namespace):
    from planeai import config
    from planeai.paths import locations
    from planeai.services.context import repo_root_of

    return config.load(user_file=locations().config_file, project_dir=repo_root_of("."),
                       explicit=getattr(args, "config", None))


def _live_sessions(paths) -> list[str] | None:
    from planeai.daemon.client import DaemonClient, DaemonNotRunning

    try:
        c = DaemonClient(paths.socket)
    except DaemonNotRunning:
        return None
    try:
        return [s["name"] for s in c.request("list") if s["alive"]]  # type: ignore[union-attr]
    finally:
        c.close()


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
    from planeai.daemon.client import daemon_pid, stop_daemon

    paths = _paths()
    if daemon_pid(paths) is None and _live_sessions(paths) is None:
        print("daemon not running")
        return 0
    _confirm_stop(paths, args.force)
    pid = stop_daemon(paths)
    print(f"daemon stopped (pid {pid})")
    return 0


def restart(args: argparse.Namespace) -> int:
    from planeai.daemon.client import daemon_pid, stop_daemon

    paths = _paths()
    if daemon_pid(paths) is not None or _live_sessions(paths) is not None:
        _confirm_stop(paths, args.force)
        stop_daemon(paths)
    return start(args)


def status(args: argparse.Namespace) -> int:
    from planeai.cli.common import print_json, table
    from planeai.daemon.client import DaemonClient, DaemonNotRunning

    paths = _paths()
    try:
        c = DaemonClient(paths.socket)
    except DaemonNotRunning:
        if getattr(args, "json", False):
            print_json({"running": False, "socket": str(paths.socket)})
        else:
            print(f"daemon not running (socket {paths.socket})")
        return 3
    try:
        st = c.request("status")
    finally:
        c.close()
    assert isinstance(st, dict)
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
