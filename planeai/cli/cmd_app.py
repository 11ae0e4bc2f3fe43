"""`planeai` with no arguments: the Textual app (the only command that imports Textual)."""

from __future__ import annotations

import argparse
import os
import sys
import threading


def run(args: argparse.Namespace) -> int:
    from planeai import config
    from planeai.paths import locations
    from planeai.services.context import canonical, open_store, repo_root_of
    from planeai.services.sessions import SessionManager
    from planeai.tui.model import preload  # pure: no Textual yet

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("planeai: the app needs a terminal; see `planeai --help` for the commands",
              file=sys.stderr)
        return 2
    locs = locations()
    root = repo_root_of(os.getcwd())
    cfg = config.load(user_file=locs.config_file, project_dir=root,
                      explicit=getattr(args, "config", None))
    store = open_store(locs)
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
    manager = SessionManager(store, cfg, locs)
    app = PlaneaiApp(manager, offer_register=offer, initial=pre.get("data"))
    try:
        app.run()
    finally:
        manager.close()
        store.close()
    return app.return_code or 0
