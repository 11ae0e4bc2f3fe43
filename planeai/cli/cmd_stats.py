"""planeai stats: what agents did and cost, per task, agent, day, project or session."""

from __future__ import annotations

import argparse
import sys

from planeai.cli.common import context, print_json
from planeai.services import metrics


def _dur(s: float) -> str:
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _num(n: int) -> str:
    if n < 10_000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1e6:.1f}M"


def _tokens(g: metrics.Group) -> str:
    if g.tokens is None:
        return "tokens unknown"
    t = g.tokens
    text = f"in {_num(t.input)} out {_num(t.output)} cache w {_num(t.cache_write)} " \
           f"r {_num(t.cache_read)}"
    if g.untracked:
        text += f" (+{g.untracked} runs unknown)"
    return text


def _cost(g: metrics.Group) -> str:
    if g.cost_usd is None:
        return "cost unknown"
    text = f"~${g.cost_usd:,.4f}" if g.cost_usd < 1 else f"~${g.cost_usd:,.2f}"
    if g.unknown_cost:
        text += f" (+{g.unknown_cost} unpriced)"
    return text


def _line(g: metrics.Group, width: int) -> str:
    return (f"{g.key:<{width}}  {g.sessions:>4}  {_dur(g.wall_s):>7}  {_dur(g.busy_s):>7}  "
            f"{_dur(g.idle_s):>7}  {_dur(g.needs_input_s):>7}  {_cost(g):<16}  {_tokens(g)}")


def run(args: argparse.Namespace) -> int:
    rep = metrics.report(context(), project=args.project, since=args.since, by=args.by)
    if args.json:
        print_json(rep.as_dict())
        return 0
    out = []
    if not rep.groups:
        out.append("no sessions" + (f" since {rep.since}" if rep.since else ""))
    else:
        width = max(len(rep.by), 5, *(len(g.key) for g in rep.groups))
        out.append(f"{rep.by.upper():<{width}}  {'RUNS':>4}  {'WALL':>7}  {'BUSY':>7}  "
                   f"{'IDLE':>7}  {'WAITING':>7}  {'COST (est.)':<16}  TOKENS")
        out += [_line(g, width) for g in rep.groups]
        out.append(_line(rep.total, width))
    for name, s in rep.budgets:
        state = "OVER BUDGET: no new tasks start" if s.over else "within budget"
        out.append(f"budget {name}: ~${s.usd:,.2f} of ${s.budget:,.2f} ({state})")
    sys.stdout.write("\n".join(out) + "\n")
    return 0
