"""Small helpers shared by the command modules (kept import-light)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import contextmanager

from planeai.errors import ValidationError


_context = None  # this process's AppContext: one per command (see main())


def begin(args: argparse.Namespace | None) -> None:
    """Start a command: its context reads --config from ``args`` when first used."""
    global _context
    end()
    from planeai.services.context import AppContext

    _context = AppContext.load(explicit=getattr(args, "config", None))


def end() -> None:
    """The command is over: hooks of what it did go to a detached runner, then the context
    closes."""
    global _context
    ctx, _context = _context, None
    if ctx is None:
        return
    try:
        if ctx.wrote_events():
            from planeai.errors import PlaneaiError
            from planeai.services.hooks import hand_off

            try:
                hand_off(ctx.store, ctx.config, explicit_config=ctx.explicit_config)
            except PlaneaiError:
                pass  # a bad config was reported by the command itself
    finally:
        ctx.close()


def context():
    """This command's AppContext (locations, config, store, session manager)."""
    if _context is None:
        begin(None)
    return _context


@contextmanager
def store():
    """The context's store, for ``with store() as s:`` blocks; it stays open until the
    command ends."""
    yield context().store


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def read_description(args: argparse.Namespace) -> str | None:
    """-d TEXT, --description-file F (or -), or a bare - meaning stdin."""
    path = getattr(args, "description_file", None)
    if getattr(args, "stdin", None) == "-":
        if args.description is not None or path is not None:
            raise ValidationError("give the description once: -d, --description-file or -")
        path = "-"
    if path is not None:
        try:
            data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
        except OSError as e:
            raise ValidationError(f"cannot read description file {path}: {e.strerror}") from None
        try:
            return data.decode("utf-8-sig")  # an editor's BOM is not part of the text
        except UnicodeDecodeError:
            src = "stdin" if path == "-" else path
            raise ValidationError(f"description from {src} is not UTF-8 text") from None
    return args.description


def failure_line(exc: BaseException) -> str | None:
    """One line for an I/O, database or decoding failure that reached the top; None for
    anything else (a bug, whose traceback is worth having)."""
    sqlite3 = sys.modules.get("sqlite3")  # loaded only if a store was opened
    if sqlite3 is not None and isinstance(exc, sqlite3.Error):
        if isinstance(exc, (sqlite3.ProgrammingError, sqlite3.InterfaceError)):
            return None  # misuse of the API: ours to fix
        from planeai.services.context import database_failure_line

        return database_failure_line(exc)
    if isinstance(exc, OSError):
        from planeai.paths import os_error_line

        return os_error_line(exc)
    if isinstance(exc, UnicodeDecodeError):
        where = _file_being_read(exc)
        bad = exc.object[exc.start:exc.start + 1].hex()
        return (f"{where or 'a file planeai read'} is not UTF-8 text (byte 0x{bad} at offset "
                f"{exc.start}); save it as UTF-8")
    return None


def _file_being_read(exc: BaseException) -> str | None:
    """The file a decoding error came from: the innermost frame holding a path or an open
    text file (Path.read_text's ``self``, a ``with open(...) as f``)."""
    import io
    from pathlib import PurePath

    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for value in frame.f_locals.values():
            if isinstance(value, PurePath):
                return str(value)
            if isinstance(value, io.TextIOWrapper) and isinstance(value.name, str):
                return value.name
    return None


def session_task_key() -> str | None:
    return os.environ.get("PLANEAI_TASK_KEY") or None


def from_sandbox() -> bool:
    """This command came from inside a sandbox, through its session's inbox: the host-side
    supervisor sets this (planeai.sandbox.inbox); the agent only ever chooses the argv."""
    return os.environ.get("PLANEAI_FROM_SANDBOX") == "1"


def table(rows: list[list[str]]) -> str:
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    out = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r, widths)] + [r[-1]]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def progress(asked: bool = False):
    """A printer of slow steps ("making the worktree of PLA-1 ...") to stderr, when stderr is
    a terminal or ``asked``; None otherwise (scripts reading stdout see nothing new)."""
    if not (asked or sys.stderr.isatty()):
        return None

    def say(text: str) -> None:
        print(f"planeai: {text} ...", file=sys.stderr, flush=True)

    return say


def manager(args: argparse.Namespace | None = None):
    """This command's SessionManager (store, config layers for the current repo)."""
    return context().manager


def cli_backend(m, requested: str | None) -> str:
    """The backend for sessions started from the CLI (they must outlive this command);
    says on stderr when the configured one was passed over."""
    kind, note = m.outliving_backend(requested)
    if note:
        print(f"planeai: {note}", file=sys.stderr)
    return kind
