"""What a sandboxed session's terminal runs: ``python -m planeai.sandbox.supervise SPEC``.

It lives exactly as long as the session: it runs ``docker run -it`` for the agent on this
terminal (so the backend sees the agent's screen and exit status as for a host session),
serves the session's inbox meanwhile, and removes the container however it ends: the agent
exits (``--rm``), the pane or PTY is closed (SIGHUP), the session is stopped (SIGTERM). Only
a SIGKILL leaves a container behind; reconcile finds it by its labels and removes it
(planeai.services.sandbox).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from planeai.sandbox import engine
from planeai.sandbox.inbox import Inbox


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m planeai.sandbox.supervise SPEC", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    name = spec["container"]
    inbox = Inbox(Path(spec["inbox"]), dict(os.environ), spec["cwd"]).start()
    child: subprocess.Popen | None = None
    ending = {"signal": 0}

    def cleanup() -> None:
        inbox.stop()
        try:
            engine.remove(name)
        except engine.SandboxError:
            pass
        secrets = Path(spec["secrets_dir"]) / spec.get("secrets_file", "secrets.env")
        try:
            os.unlink(secrets)  # never read (the container did not start): gone all the same
        except OSError:
            pass

    def on_signal(signum, frame) -> None:
        ending["signal"] = signum
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
        child = subprocess.Popen([engine.docker_bin(), *spec["docker_args"]])
        rc = child.wait()
    except engine.SandboxError as e:
        print(f"planeai: error: {e}", file=sys.stderr)
        rc = 125
    finally:
        if not ending["signal"]:
            cleanup()
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
