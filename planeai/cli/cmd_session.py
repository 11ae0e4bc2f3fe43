"""planeai session ... and planeai attach."""

from __future__ import annotations

import argparse
import os
import sys

from planeai.cli.common import cli_backend, manager, print_json, progress, table
from planeai.errors import ValidationError


def start(args: argparse.Namespace) -> int:
    m = manager(args)
    try:
        key, project, task = _key(args.key), None, None
        if key is None:
            from planeai.services.context import resolve_project

            project = resolve_project(m.store, args.project)
        else:
            task = m.store.get_task(key)
        # the input first (task, agent), then which backend and whether it can run here
        m.resolve_agent(args.provider, project or m.store.get_project_by_id(task.project_id),
                        task)
        host = args.host or (task.host if task is not None and task.host != "local"
                             else None)
        if host and args.backend:
            raise ValidationError("--host runs the session in tmux on that host: give "
                                  "--host or --backend, not both")
        kind = None if host else cli_backend(m, args.backend)
        s = m.start(task_key=key, project=project, agent=args.provider, host=host,
                    backend=kind, worktree=not args.no_worktree, yolo=args.yolo,
                    prompt=args.prompt, autonomous=args.autonomous, sandbox=args.sandbox,
                    progress=progress())
        if args.json:
            print_json(s.as_dict())
        else:
            where = f" in {s.worktree} ({s.branch})" if s.worktree else ""
            boxed = " (sandboxed)" if m.sandboxed(s) else ""
            print(f"started {s.name}: {s.agent} on {s.backend}{boxed}{where}")
            cmd = m.backend(s.backend).attach_command(s.name)
            if cmd:
                print(f"attach: planeai attach {s.name}")
        m.wait_for_prompts()
        return 0
    finally:
        m.close()


def _key(key: str | None) -> str | None:
    if key is None:
        return None
    from planeai.core import validate

    return validate.normalize_key(key)


def list(args: argparse.Namespace) -> int:  # noqa: A001
    m = manager(args)
    try:
        m.reconcile()
        from planeai.services import board

        rows_ = [m.observe(s.id) for s in board.sessions(m.store, archived=args.all)]
        if args.json:
            print_json([v.session.as_dict() | {"agent_status": v.status.value,
                                                "sandbox": m.sandboxed(v.session),
                                                "reachable": not v.unreachable}
                        for v in rows_])
            return 0
        if not rows_:
            print("no sessions")
            return 0
        rows = [["NAME", "TASK", "AGENT", "BACKEND", "STATE", "STATUS", "WORKTREE"]]
        for v in rows_:
            s = v.session
            state = s.state.value + (f" ({s.exit_code})" if s.exit_code is not None else "")
            where = s.backend + (" (sandbox)" if m.sandboxed(s) else "")
            status = ("unreachable (host down)" if v.unreachable
                      else v.status.value.replace("_", " "))
            rows.append([s.name, s.task_key or "-", s.agent, where, state, status,
                         s.worktree or "-"])
        print(table(rows))
        return 0
    finally:
        m.close()


def _with(args: argparse.Namespace, fn) -> int:
    m = manager(args)
    try:
        return fn(m)
    finally:
        m.close()


def send(args: argparse.Namespace) -> int:
    """Type a prompt, only into an idle agent; say whether it went to work."""
    for flag, value in (("--wait", args.wait), ("--watch", args.watch)):
        if value < 0:
            raise ValidationError(f"{flag} {value:g}: give seconds, 0 or more")
    text = args.text
    if text == "-":
        text = sys.stdin.read()
    if not text.strip():
        raise ValidationError("nothing to send: give TEXT or - for stdin")

    def go(m) -> int:
        from planeai.services.session_input import SendRefused

        try:
            # @agent:skill mentions are checked; a named skill's instructions lead the prompt
            r = m.send_prompt(args.ref, text, wait=args.wait, force=args.force,
                              watch=args.watch)
        except SendRefused as e:
            return _refused(e, args.json)
        name = r.session.name
        if args.json:
            print_json(r.as_dict())
        elif r.delivered:
            print(f"delivered; {name} is {_status_words(r.status)}")
            _print_question(r.question)
        else:
            print(f"sent, but {name} did not start working within {args.watch:g} s "
                  f"(status: {_status_words(r.status)})", file=sys.stderr)
        return 0 if r.delivered else 1

    return _with(args, go)


def keys(args: argparse.Namespace) -> int:
    """Press keys in the agent's terminal (answering its dialogs)."""
    from planeai.services.session_input import check_keys

    names = check_keys(args.keys)  # before any session or backend is touched

    def go(m) -> int:
        view = m.send_keys(args.ref, names)
        s, status = view.session, view.status
        question = []
        if view.snapshot is not None and status.value == "needs_input":
            from planeai.services.session_input import screen_question

            question = screen_question(view.snapshot.text)
        if args.json:
            print_json({"session": s.name, "keys": names, "status": status.value,
                        "question": question})
        else:
            print(f"sent {' '.join(names)}; {s.name} is {_status_words(status)}")
            _print_question(question)
        return 0

    return _with(args, go)


def _status_words(status) -> str:
    return status.value.replace("_", " ")


def _print_question(lines: list[str], file=None) -> None:
    for line in lines:
        print(f"  | {line}", file=file or sys.stdout)


def _refused(e, as_json: bool) -> int:
    """A prompt not sent: one line why, then the question on the agent's screen and how to
    answer it. Exit 1."""
    hint = {
        "needs_input": f"answer it with keys, e.g. `planeai session keys {e.session} Enter` "
                       "(or Down Enter, Escape, 1 ...), then send again",
        "busy": "wait longer (--wait SECONDS) or type it anyway (--force)",
        "starting": "wait longer (--wait SECONDS) or type it anyway (--force)",
        "exited": f"start it again: planeai session restart {e.session}",
    }.get(e.status.value, "")
    if as_json:
        print_json({"session": e.session, "delivered": False, "status": e.status.value,
                    "question": e.question, "error": str(e)})
    print(f"planeai: error: {e}", file=sys.stderr)
    if not as_json:
        _print_question(e.question, sys.stderr)
        if hint:
            print(hint, file=sys.stderr)
    return 1


def stop(args: argparse.Namespace) -> int:
    def go(m) -> int:
        print(m.stop_and_say(args.ref))
        return 0

    return _with(args, go)


def restart(args: argparse.Namespace) -> int:
    def go(m) -> int:
        s = m.restart(args.ref, yolo=args.yolo)
        print(f"restarted {s.name} in {s.worktree or 'the repo'}")
        return 0

    return _with(args, go)


def archive(args: argparse.Namespace) -> int:
    def go(m) -> int:
        s = m.archive(args.ref)
        print(f"archived {s.name}; its worktree is kept" if s.worktree else f"archived {s.name}")
        return 0

    return _with(args, go)


def delete(args: argparse.Namespace) -> int:
    def go(m) -> int:
        name = m.get(args.ref).name
        ref = m.delete(args.ref, force=args.force)
        said = ref.describe() if hasattr(ref, "describe") else f"unsaved work kept in {ref}"
        print(f"deleted {name}" + (f"; {said}" if ref else ""))
        return 0

    return _with(args, go)


def logs(args: argparse.Namespace) -> int:
    def go(m) -> int:
        for line in m.logs(args.ref):
            print(line)
        return 0

    return _with(args, go)


def attach(args: argparse.Namespace) -> int:
    m = manager(args)
    try:
        m.reconcile()
        cmd = m.attach_command(args.ref)
    finally:
        m.close()
    if not sys.stdin.isatty():
        raise ValidationError("attach needs a terminal; run it in an interactive shell")
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    os.execvpe(cmd[0], cmd, env)
    return 0  # not reached
