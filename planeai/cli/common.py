"""Small helpers shared by the command modules (kept import-light)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from planeai.errors import ValidationError


def store():
    from planeai.services.context import open_store

    return open_store()


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
            return data.decode("utf-8")
        except UnicodeDecodeError:
            src = "stdin" if path == "-" else path
            raise ValidationError(f"description from {src} is not UTF-8 text") from None
    return args.description


def session_task_key() -> str | None:
    return os.environ.get("PLANEAI_TASK_KEY") or None


def table(rows: list[list[str]]) -> str:
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    out = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r, widths)] + [r[-1]]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def manager(args: argparse.Namespace):
    """A SessionManager on the store, with config layers for the current repo."""
    from planeai import config
    from planeai.paths import locations
    from planeai.services.context import open_store, repo_root_of
    from planeai.services.sessions import SessionManager

    locs = locations()
    cfg = config.load(user_file=locs.config_file, project_dir=repo_root_of("."),
                      explicit=getattr(args, "config", None))
    return SessionManager(open_store(locs), cfg, locs)


def cli_backend(m, requested: str | None) -> str:
    """The backend for sessions started from the CLI: not local, whose PTYs live inside the
    process that starts them and would end with this command."""
    from planeai.errors import BackendError

    kind = requested or m.config["defaults.backend"]
    if kind == "local":
        raise BackendError(
            "the local backend keeps sessions inside the planeai app, so this command's "
            "sessions would end with it; pass --backend tmux (or set defaults.backend = "
            "\"tmux\"), or start them from the app")
    return kind
