"""planeai diff / check / commit / merge / pr / gc: review a task's work and deliver it."""

from __future__ import annotations

import argparse
import sys

from planeai.cli.common import context, print_json, table
from planeai.errors import ValidationError


def diff(args: argparse.Namespace) -> int:
    from planeai.services import review

    ctx = context()
    d = review.diff(ctx.store, args.key, args.session)
    if args.json:
        out = d.as_dict()
        if not args.stat:
            out["patch"] = d.patch()
        print_json(out)
        return 0
    if not d.files:
        print(f"no changes against {d.base_ref} ({d.base[:12]})")
        return 0
    tty = sys.stdout.isatty()
    green, red, off = ("\x1b[32m", "\x1b[31m", "\x1b[0m") if tty else ("", "", "")
    width = max(len(f.path) for f in d.files)
    for f in d.files:
        counts = "binary" if f.binary else f"{green}+{f.added}{off} {red}-{f.deleted}{off}"
        name = f"{f.old_path} -> {f.path}" if f.old_path else f.path
        print(f" {f.status} {name.ljust(width)}  {counts}")
    print(f" {len(d.files)} file{'s' if len(d.files) != 1 else ''} changed against "
          f"{d.base_ref} ({d.base[:12]}): {green}+{d.added}{off} {red}-{d.deleted}{off}")
    if not args.stat:
        print()
        sys.stdout.write(d.patch(color=tty))
    return 0


def check(args: argparse.Namespace) -> int:
    from planeai.services import review

    ctx = context()
    run = review.run_checks(ctx.store, ctx.config, args.key, args.session)
    if args.json:
        print_json(run.as_dict())
    else:
        for r in run.results:
            verdict = "pass" if r.passed else ("timed out" if r.timed_out else
                                               f"FAIL (exit {r.exit_code})")
            print(f"{verdict}: {r.command}  ({r.seconds:.1f}s)")
            if not r.passed and r.output.strip():
                for line in r.output.rstrip().splitlines()[-20:]:
                    print(f"    {line}")
        print(f"{run.task_key}: {'all checks passed' if run.passed else 'checks failed'} "
              f"in {run.worktree}")
    return 0 if run.passed else 1


def commit(args: argparse.Namespace) -> int:
    from planeai.services import delivery

    sha = delivery.commit(context().store, args.key, args.message, args.session)
    print(f"committed {sha[:12]} on {args.key.upper()}'s branch")
    return 0


def merge(args: argparse.Namespace) -> int:
    from planeai.services import delivery

    how = "squash" if args.squash else "rebase" if args.rebase else None
    ctx = context()
    out = delivery.merge(ctx.manager, args.key, how, commit_first=args.commit,
                         session=args.session, stack=args.stack)
    return _report_merge(args, out)


def _report_merge(args: argparse.Namespace, out, extra: dict | None = None) -> int:
    r = out.result
    if args.json:
        print_json({**out.as_dict(), **(extra or {})})
        return 0 if r.ok else 1
    if out.committed:
        print(f"committed {out.committed[:12]} first (--commit)")
    if not r.ok:
        print(f"planeai: error: merging {r.branch} into {r.base} ({r.how}) conflicts in: "
              f"{', '.join(r.conflicts)}; nothing was changed: {r.base} stays at "
              f"{r.base_after[:12]} (was {r.base_before[:12]}), {r.branch} at "
              f"{r.branch_after[:12]} (was {r.branch_before[:12]})", file=sys.stderr)
        return 1
    if r.commit is None:
        print(r.moved_by)
    else:
        print(f"merged {r.branch} into {r.base} ({r.how}): {r.base} "
              f"{r.base_before[:12]} -> {r.commit[:12]}; moved {r.moved_by}")
    c = out.cleanup
    if c.removed:
        print("removed the worktree" + (f" and branch {r.branch}" if c.branch_deleted else "")
              + (f"; the branch's own commits are kept in {c.recovery}" if c.recovery else ""))
    elif c.kept:
        print(f"kept the worktree: {c.kept}")
    print(f"{r.branch} is in {r.base}; its task is done")
    return 0


def keep(args: argparse.Namespace) -> int:
    from planeai.services import delivery

    how = "squash" if args.squash else "rebase" if args.rebase else None
    out = delivery.keep(context().manager, args.session, how, commit_first=args.commit)
    code = _report_merge(args, out.merged, {"discarded": out.discarded})
    if code == 0 and not args.json:
        for name, ref in out.discarded.items():
            print(f"discarded {name}" + (f": its work is kept in {ref}" if ref else
                                         " (it had no worktree)"))
    return code


def pr(args: argparse.Namespace) -> int:
    from planeai.services import delivery

    out = delivery.pull_request(context().manager, args.key, remote=args.remote,
                                commit_first=args.commit, session=args.session)
    if args.json:
        print_json(out.as_dict())
        return 0
    if out.committed:
        print(f"committed {out.committed[:12]} first (--commit)")
    print(f"pushed {out.branch} to {out.remote}")
    if out.url:
        print(f"pull request: {out.url}")
    else:
        print(out.note)
    return 0


def gc(args: argparse.Namespace) -> int:
    from planeai.services import gc as gc_svc

    m = context().manager
    items = gc_svc.plan(m)
    going = [i for i in items if not i.keep]
    kept = [i for i in items if i.keep]
    if args.json and args.dry_run:
        print_json([i.as_dict() for i in items])
        return 0
    rows = [["WHAT", "KIND", "SIZE", "WHY"]]
    for i in going:
        rows.append([i.what, i.kind, gc_svc.human(i.size) if i.kind == "worktree" else "-",
                     i.reason])
    if not args.json:
        if going:
            print(table(rows))
            print(f"{len(going)} to remove, {gc_svc.human(sum(i.size for i in going))} freed")
        else:
            print("nothing to remove")
        for i in kept:
            print(f"kept {i.what}: {i.keep}")
    if args.dry_run or not going:
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise ValidationError("gc removes things: pass --yes to confirm (or --dry-run to "
                                  "only list them)")
        if input("remove them? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 0
    gone = gc_svc.apply(m, going)
    if args.json:
        print_json([i.as_dict() for i in gone])
    else:
        print(f"removed {len(gone)}: {gc_svc.human(sum(i.size for i in gone))} freed")
    return 0
