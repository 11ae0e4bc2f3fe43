"""planeai run "prompt" @claude-opus @gemini-pro: one prompt to N agents at once."""

from __future__ import annotations

import argparse
import threading

from planeai.cli.common import cli_backend, manager, print_json
from planeai.errors import PlaneaiError, ValidationError


def run(args: argparse.Namespace) -> int:
    from planeai.core.mentions import find_mentions, strip_mentions
    from planeai.services import tasks as task_svc
    from planeai.services.context import resolve_project
    from planeai.services.mentions import resolve

    text = args.prompt
    extra = [a if a.startswith("@") else "@" + a for a in args.agents]
    mentions = find_mentions(text) + find_mentions(" ".join(extra))
    prompt = strip_mentions(text)
    if not mentions:
        raise ValidationError("name at least one agent, e.g. planeai run \"...\" @claude "
                              "@gemini-flash")
    if not prompt:
        raise ValidationError("the prompt is empty once the @mentions are taken out")
    m = manager(args)
    try:
        kind = cli_backend(m, args.backend)
        if args.task:
            task = task_svc.get(m.store, args.task)
            project = m.store.get_project_by_id(task.project_id)
        else:
            project = resolve_project(m.store, args.project)
        registry, skills = m.registry(project), m.skill_set(project)
        resolved = [resolve(x, registry, skills) for x in mentions]  # all valid, or nothing starts
        if not args.task:
            title = prompt.splitlines()[0].strip()
            title = title if len(title) <= 80 else title[:77] + "..."
            task = task_svc.add_task(m.store, project, title, description=prompt)
        sessions, errors = [None] * len(resolved), [None] * len(resolved)

        def start(i: int) -> None:
            r = resolved[i]
            try:
                sessions[i] = m.start(task_key=task.key, agent=r.agent, backend=kind,
                                      prompt=prompt, yolo=args.yolo,
                                      skill=r.skill.trigger if r.skill else None)
            except PlaneaiError as e:
                errors[i] = f"{r.mention.raw}: {e}"

        threads = [threading.Thread(target=start, args=(i,)) for i in range(len(resolved))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        m.wait_for_prompts()
        started = [s for s in sessions if s is not None]
        if args.json:
            print_json({"task": task.key, "sessions": [s.as_dict() for s in started],
                        "errors": [e for e in errors if e]})
        else:
            print(f"{task.key}: {task.title}")
            for s in started:
                print(f"  started {s.name}: {s.agent} in {s.worktree} ({s.branch})")
            print(f"compare: planeai session list; attach: planeai attach {started[0].name}"
                  if started else "no session started")
        failed = [e for e in errors if e]
        if failed:
            raise PlaneaiError("; ".join(failed))
        return 0
    finally:
        m.close()
