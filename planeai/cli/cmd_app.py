"""`planeai` with no arguments: the Textual app (the only command that imports Textual)."""

from __future__ import annotations

import argparse
import os
import sys
import threading


def run(args: argparse.Namespace) -> int:
    from planeai.cli.common import context
    from planeai.services.context import canonical, repo_root_of
    from planeai.tui.model import preload  # pure: no Textual yet

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("planeai: the app needs a terminal; see `planeai --help` for the commands",
              file=sys.stderr)
        return 2
    ctx = context()
    root = repo_root_of(os.getcwd())
    ctx.config  # a bad config file stops here, before the terminal is taken over
    store = ctx.store
    offer = None
    if root is not None and store.project_by_path(canonical(root)) is None:
        offer = canonical(root)

    # Load the board while Textual imports (~0.2 s): the first frame then shows the tasks.
    pre: dict = {}

    def load() -> None:
        try:
            pre["data"] = preload(store)
        except Exception:  # the app's poller loads it again and reports what is wrong
            pre.clear()

    loader = threading.Thread(target=load, name="planeai-preload", daemon=True)
    loader.start()
    from planeai.tui.app import PlaneaiApp

    loader.join()
    app = PlaneaiApp(ctx.manager, offer_register=offer, initial=pre.get("data"))
    app.run()  # main() closes the context (sessions' backends, then the store)
    return app.return_code or 0
