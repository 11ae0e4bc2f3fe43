#!/usr/bin/env python3
"""What a sandboxed session's terminal runs on a host (installed by planeai as
ROOT/bin/planeai-sandbox; the planeai package is not there): the host's twin of
``python -m planeai.sandbox.supervise SPEC``. Python 3 standard library only.

It runs ``docker run -it`` for the agent on this terminal (so the session shows the agent's
screen and exit status as for any session), serves the session's inbox meanwhile (the
in-container ``planeai`` writes its argv there; the ``planeai`` client beside this script
runs each request on the board, over the relay socket the host's SSH connection forwards),
and removes the container however it ends: the agent exits (``--rm``), the pane is
closed (SIGHUP), the session is stopped (SIGTERM).
"""

import json
import os
import signal
import subprocess
import sys
import threading

POLL = 0.05
TIMEOUT = 120.0
NO_BOARD = ("planeai: error: no connection to the planeai board (is the user's planeai "
            "reachable over SSH?)\n")


def ask_board(argv):
    """(rc, out, err) of ``planeai ARGV`` on the board: the client planeai installed beside
    this script (ROOT/bin/planeai, through the relay)."""
    client = os.path.join(os.path.dirname(os.path.abspath(__file__)), "planeai")
    try:
        cp = subprocess.run([sys.executable, client, *argv], capture_output=True,
                            stdin=subprocess.DEVNULL, timeout=TIMEOUT + 10)
    except (OSError, subprocess.TimeoutExpired):
        return 1, "", NO_BOARD
    return (cp.returncode, cp.stdout.decode("utf-8", "replace"),
            cp.stderr.decode("utf-8", "replace"))


class Inbox(threading.Thread):
    """``<id>.req`` (argv, NUL-separated) -> ``<id>.out``, ``.err``, last ``.done``, each
    renamed into place whole (planeai.sandbox.inbox's format)."""

    def __init__(self, directory):
        super().__init__(daemon=True)
        self.dir = directory
        self.stopped = threading.Event()
        self.seen = set()

    def run(self):
        while not self.stopped.is_set():
            try:
                names = [n for n in os.listdir(self.dir) if n.endswith(".req")]
            except OSError:
                names = []
            for name in names:
                if name not in self.seen:
                    self.seen.add(name)
                    threading.Thread(target=self.serve, args=(name,), daemon=True).start()
            self.stopped.wait(POLL)

    def serve(self, name):
        req_id = name[:-len(".req")]
        path = os.path.join(self.dir, name)
        try:
            with open(path, "rb") as f:
                data = f.read(1024 * 1024 + 1)
            os.unlink(path)
        except OSError:
            return
        try:
            args = data.decode("utf-8").split("\0")
        except UnicodeDecodeError:
            args = None
        if args and args[-1] == "":
            args.pop()
        if args is None or len(data) > 1024 * 1024:
            rc, out, err = 1, "", "planeai: error: the command is not UTF-8 or over 1 MiB\n"
        else:
            rc, out, err = ask_board(args)
        for suffix, text in ((".out", out), (".err", err), (".done", "%d\n" % rc)):
            tmp = os.path.join(self.dir, ".%s%s.tmp" % (req_id, suffix))
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, os.path.join(self.dir, req_id + suffix))
        self.seen.discard(name)


def main(argv):
    if len(argv) != 1:
        sys.stderr.write("usage: planeai-sandbox SPEC\n")
        return 2
    with open(argv[0], encoding="utf-8") as f:
        spec = json.load(f)
    name = spec["container"]
    inbox = Inbox(spec["inbox"])
    inbox.start()
    state = {"child": None}

    def cleanup():
        inbox.stopped.set()
        subprocess.run(["docker", "rm", "-f", name], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            os.unlink(os.path.join(spec["secrets_dir"], spec.get("secrets_file",
                                                                  "secrets.env")))
        except OSError:
            pass

    def on_signal(signum, frame):
        child = state["child"]
        if child is not None and child.poll() is None:
            try:
                child.terminate()
            except OSError:
                pass
        cleanup()
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, on_signal)
    try:
        state["child"] = subprocess.Popen(["docker", *spec["docker_args"]])
    except OSError as e:
        sys.stderr.write("planeai: error: cannot run docker on this host: %s\n" % e)
        cleanup()
        return 127
    rc = state["child"].wait()
    cleanup()
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
