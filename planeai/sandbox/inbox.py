"""The host side of the in-container ``planeai`` (planeai-inbox.sh): one directory per session.

A request is ``<id>.req`` (the argv, NUL-separated, renamed into place whole); the answer is
``<id>.out``, ``<id>.err`` and last ``<id>.done`` (the exit code), each renamed into place so
the client never reads half of one. Each request runs as the host's own ``planeai`` process
with the session's environment (PLANEAI_SESSION_ID, PLANEAI_TASK_KEY, ...): the same code, the
same store transactions and so the same concurrency guarantees as a call from a host session.
Only the board's commands are served (``task ...``): an agent in a sandbox cannot reach
sessions, config, secrets or trust through its inbox.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

ALLOWED = ("task",)
REQUEST_MAX = 1024 * 1024
ANSWER_TIMEOUT = 110.0  # the client gives up at ~120 s
POLL = 0.05


class Inbox:
    """Serves one session's inbox on a background thread until :meth:`stop`."""

    def __init__(self, directory: Path, env: dict[str, str], cwd: str) -> None:
        self.dir = Path(directory)
        self.env = env
        self.cwd = cwd
        self._stop = threading.Event()
        self._seen: set[str] = set()
        self._thread = threading.Thread(target=self._loop, name="inbox", daemon=True)

    def start(self) -> "Inbox":
        self.dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                names = [e.name for e in os.scandir(self.dir) if e.name.endswith(".req")]
            except OSError:
                names = []
            for name in names:
                if name in self._seen:
                    continue
                self._seen.add(name)
                threading.Thread(target=self._serve, args=(name,), daemon=True).start()
            self._stop.wait(POLL)

    def _serve(self, name: str) -> None:
        req_id = name[:-len(".req")]
        path = self.dir / name
        try:
            with open(path, "rb") as f:
                data = f.read(REQUEST_MAX + 1)
            os.unlink(path)
        except OSError:
            return
        rc, out, err = self.answer(data)
        for suffix, text in ((".out", out), (".err", err), (".done", f"{rc}\n")):
            tmp = self.dir / f".{req_id}{suffix}.tmp"
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.dir / f"{req_id}{suffix}")
        self._seen.discard(name)

    def answer(self, data: bytes) -> tuple[int, str, str]:
        if len(data) > REQUEST_MAX:
            return 1, "", "planeai: error: the command is over 1 MiB\n"
        try:
            args = data.decode("utf-8").split("\0")
        except UnicodeDecodeError:
            return 1, "", "planeai: error: the command is not UTF-8\n"
        if args and args[-1] == "":
            args.pop()
        env = dict(self.env, PLANEAI_FROM_SANDBOX="1")  # its tasks stay sandboxed
        return answer(args, env, self.cwd, where="inside a sandbox")


def answer(args: list[str], env: dict[str, str], cwd: str, *,
           where: str) -> tuple[int, str, str]:
    """(rc, stdout, stderr) of ``planeai ARGS`` run here with ``env``, when ARGS is one of the
    board's commands; shared by the sandbox inbox and the remote relay (planeai.remote.relay).
    ``where`` names the caller's place in the refusal ("inside a sandbox")."""
    if not args or args[0] not in ALLOWED:
        first = args[0] if args else ""
        return 2, "", (f"planeai: error: {where} only the board's commands are "
                       f"available ({', '.join(ALLOWED)} ...), not {first!r}\n")
    try:
        cp = subprocess.run([sys.executable, "-m", "planeai", *args], env=env,
                            cwd=cwd, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=ANSWER_TIMEOUT)
    except subprocess.TimeoutExpired:
        return 1, "", "planeai: error: the command did not finish on the host in time\n"
    except OSError as e:
        return 1, "", f"planeai: error: the host could not run planeai: {e}\n"
    return cp.returncode, cp.stdout, cp.stderr
