"""planeai events: the append-only event log."""

from __future__ import annotations

import argparse
import json

from planeai.cli.common import print_json, store
from planeai.services.board import event_log


def run(args: argparse.Namespace) -> int:
    with store() as s:
        events = event_log(s, after=args.after, task_key=args.task, limit=args.limit,
                           newest=not args.oldest)
    if args.json:
        print_json([e.as_dict() for e in events])
        return 0
    for e in events:
        who = " ".join(x for x in (e.task_key, e.session_id) if x)
        print(f"{e.id:>6}  {e.ts}  {e.kind:<18} {who}  {json.dumps(e.data, ensure_ascii=False)}")
    return 0
