"""``python -m planeai.backends.daemon``: run the session daemon (``planeai daemon start`` does
this). The entry point: arguments, detaching from the terminal, logging; ``server`` serves."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import sys
from pathlib import Path

from planeai.backends.daemon import DaemonPaths, private_dir
from planeai.backends.daemon.server import CLIENT_BUFFER, Server
from planeai.backends.daemon.sessions import SCROLLBACK

log = logging.getLogger("planeai.backends.daemon")


def _setup_logging(paths: DaemonPaths) -> None:
    private_dir(paths.state_dir)
    handler = logging.handlers.RotatingFileHandler(paths.log, maxBytes=1 << 20, backupCount=2)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("planeai")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def run(paths: DaemonPaths, **kw) -> int:
    """Serve in this process until shutdown. 0 on a clean stop, 3 if one already runs."""
    _setup_logging(paths)
    server = Server(paths, **kw)
    if not server.acquire_lock():
        log.info("another daemon holds %s; exiting", paths.lock)
        return 3
    server.bind()
    server.install_signals()
    server.serve_forever()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m planeai.backends.daemon",
                                 description="planeai session daemon (use `planeai daemon start`)")
    ap.add_argument("--runtime-dir", required=True)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--client-buffer", type=int, default=CLIENT_BUFFER)
    ap.add_argument("--scrollback", type=int, default=SCROLLBACK)
    ap.add_argument("--detach", action="store_true",
                    help="fork into the background (new session, no terminal) and return")
    a = ap.parse_args(argv)
    paths = DaemonPaths(Path(a.runtime_dir), Path(a.state_dir))
    if a.detach:
        if os.fork() > 0:
            return 0  # the starter waits for the socket, not for us
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        private_dir(paths.state_dir)
        logfd = os.open(paths.log.with_suffix(".out"), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                        0o600)
        os.dup2(logfd, 1)
        os.dup2(logfd, 2)
        os.chdir("/")
    try:
        code = run(paths, client_buffer=a.client_buffer, scrollback=a.scrollback)
    except Exception:
        log.exception("daemon crashed")
        raise
    if a.detach:
        os._exit(code)
    return code



if __name__ == "__main__":
    sys.exit(main())
