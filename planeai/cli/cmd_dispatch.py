"""planeai dispatch run / status: the headless dispatcher."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from planeai.cli.common import manager, print_json, table


def run(args: argparse.Namespace) -> int:
    from planeai.services.context import resolve_project
    from planeai.services.dispatch import Dispatcher
    from planeai.services.notify import Notifier

    m = manager(args)
    if args.max_sessions is not None:
        m.config.set("dispatch", "max_sessions", args.max_sessions)
    if args.backend:
        m.config.set("dispatch", "backend", args.backend)
    project = resolve_project(m.store, args.project) if args.project else None
    d = Dispatcher(m, project=project, notifier=Notifier(m.config.notify),
                   sandbox=args.sandbox)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    waiting_said = False

    def report(r) -> None:
        nonlocal waiting_said
        if r.lost:
            print(f"stopped dispatching: {r.lost}", flush=True)
        if not r.leader:
            if not waiting_said:
                print(f"another dispatcher holds the lease ({d.leader()});"
                      " waiting", flush=True)
                waiting_said = True
            return
        waiting_said = False
        for key in r.dispatched:
            print(f"dispatched {key}", flush=True)
        for key in r.completed:
            print(f"completed {key}", flush=True)
        for key in r.failed:
            print(f"failed {key}", flush=True)

    def trouble(e: Exception, pause: float) -> None:
        print(f"planeai: dispatch pass failed ({type(e).__name__}: {e}); retrying in "
              f"{pause:g} s", file=sys.stderr, flush=True)

    try:
        d.run(once=args.once, exit_when_idle=args.exit_when_idle, stop=stop, on_tick=report,
              on_error=trouble)
        # prompts pasted once an agent is ready are part of starting it: a dispatcher that
        # exits (--once, --exit-when-idle, a signal) delivers them first
        m.wait_for_prompts()
    finally:
        m.close()
    return 0


def status(args: argparse.Namespace) -> int:
    from planeai.services.dispatch import dispatch_status

    m = manager(args)
    try:
        st = dispatch_status(m)
    finally:
        m.close()
    if args.json:
        print_json({"leader": st.leader, "dead_leader": st.dead_leader,
                    "over_budget": st.over_budget,
                    "max_sessions": st.max_sessions,
                    "running": [s.as_dict() for s in st.running],
                    "queue": [t.key for t in st.queue]})
        return 0
    if st.dead_leader:
        print(f"dispatcher: none running ({st.dead_leader} holds the lease but its process is "
              "gone; the next dispatcher takes over at once)")
    else:
        print(f"dispatcher: {st.leader or 'none running'}")
    print(f"slots: {len(st.running)}/{st.max_sessions} in use")
    if st.running:
        print(table([["SESSION", "TASK", "AGENT", "STATUS"]] +
                    [[s.name, s.task_key or "-", s.agent, s.agent_status or "-"]
                     for s in st.running]))
    print("queue: " + (", ".join(f"{t.key} (P{t.priority})" for t in st.queue) or "empty"))
    for name, why in st.over_budget.items():
        print(f"no new work on {name}: {why}")
    if st.held:
        print("held after failures (move to todo to retry): " +
              ", ".join(f"{t.key} ({t.last_failure})" for t in st.held))
    return 0
