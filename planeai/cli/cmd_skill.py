"""planeai skill list / show."""

from __future__ import annotations

import argparse
import sys

from planeai.cli.common import print_json, table


def _skills():
    from planeai.services.context import repo_root_of
    from planeai.skills import load_skills, skill_dirs

    sset = load_skills(skill_dirs(repo_root_of(".")))
    for err in sset.errors:
        print(f"planeai: warning: skipped skill {err}", file=sys.stderr)
    return sset


def list(args: argparse.Namespace) -> int:  # noqa: A001
    sset = _skills()
    skills = sorted(sset.skills.values(), key=lambda s: s.trigger)
    if args.json:
        print_json([{"name": s.name, "trigger": s.trigger, "description": s.description,
                     "default_provider": s.default_provider, "mode": s.mode,
                     "timeout_minutes": s.timeout_minutes, "source": str(s.source)}
                    for s in skills])
        return 0
    if not skills:
        print("no skills")
        return 0
    rows = [["TRIGGER", "DEFAULT AGENT", "DESCRIPTION"]]
    rows += [[s.trigger, s.default_provider or "-", s.description.splitlines()[0][:70]]
             for s in skills]
    print(table(rows))
    return 0


def show(args: argparse.Namespace) -> int:
    s = _skills().get(args.trigger)
    if args.json:
        print_json({"name": s.name, "trigger": s.trigger, "description": s.description,
                    "default_provider": s.default_provider, "mode": s.mode,
                    "tools": [*s.tools], "timeout_minutes": s.timeout_minutes,
                    "context_paths": [*s.context_paths], "source": str(s.source),
                    "instructions": s.body})
        return 0
    print(f"{s.name} (@…:{s.trigger})  from {s.source}")
    print(f"  {s.description}")
    if s.default_provider:
        print(f"  default agent: {s.default_provider}")
    if s.timeout_minutes:
        print(f"  timeout: {s.timeout_minutes:g} minutes")
    print()
    print(s.body.rstrip())
    return 0
