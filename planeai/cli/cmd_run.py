"""planeai run "prompt" @claude-opus @gemini-pro: one prompt to N agents at once."""

from __future__ import annotations

import argparse

from planeai.cli.common import cli_backend, manager, print_json
from planeai.errors import PlaneaiError


def run(args: argparse.Namespace) -> int:
    from planeai.services.context import resolve_project
    from planeai.services.run_many import plan_run, start_run

    m = manager(args)
    try:
        project = None if args.task else resolve_project(m.store, args.project)
        # the input first: a wrong mention is named before any backend is looked at
        plan = plan_run(m, args.prompt, extra_agents=args.agents, task_key=args.task,
                        project=project)
        kind = cli_backend(m, args.backend)
        r = start_run(m, plan, backend=kind, yolo=args.yolo, sandbox=args.sandbox)
        m.wait_for_prompts()
        # the agents' first-run dialogs (folder trust, bypass consent) are answered while
        # they are observed: this command watches until each is past its start
        settled = m.settle(r.sessions)
        if args.json:
            print_json({"task": r.task.key,
                        "sessions": [s.as_dict() | {"agent_status": settled[s.name].value}
                                     for s in r.sessions],
                        "errors": r.errors})
        else:
            print(f"{r.task.key}: {r.task.title}")
            for s in r.sessions:
                status = settled[s.name].value.replace("_", " ")
                print(f"  started {s.name}: {s.agent} in {s.worktree} ({s.branch}), {status}")
            print(f"compare: planeai session list; attach: planeai attach {r.sessions[0].name}"
                  if r.sessions else "no session started")
        if r.errors:
            raise PlaneaiError("; ".join(r.errors))
        return 0
    finally:
        m.close()
