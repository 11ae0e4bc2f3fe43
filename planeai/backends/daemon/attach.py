"""``planeai attach KEY`` for daemon sessions: the session in this terminal, raw.

Shows the session's current screen at once, then its live output; every key goes to the agent
except the detach key (default Ctrl-Q). The session follows this terminal's size (SIGWINCH).
Run as ``python -m planeai.backends.daemon.attach [--socket PATH] [--detach-key C-q] NAME``.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import termios
import threading
import tty

# Leave the terminal as we found it: styles, cursor, paste and mouse modes, main screen.
RESTORE = (b"\x1b[0m\x1b[?25h\x1b[?2004l\x1b[?1l\x1b>\x1b[?1000l\x1b[?1002l\x1b[?1003l"
           b"\x1b[?1006l\x1b[?1049l")
ENTER = b"\x1b[?1049h\x1b[H\x1b[2J"


def parse_key(spec: str) -> bytes:
    """``C-q`` / ``^Q`` / ``C-]`` -> the control byte it sends."""
    s = spec.strip()
    if s.lower().startswith("c-") and len(s) == 3:
        ch = s[2]
    elif s.startswith("^") and len(s) == 2:
        ch = s[1]
    else:
        raise ValueError(f"detach key {spec!r} is not accepted: use C-<key>, e.g. C-q or C-]")
    ch = ch.upper()
    if ch == "?":
        return b"\x7f"
    code = ord(ch)
    if not 0x40 <= code <= 0x5F:
        raise ValueError(f"detach key {spec!r} is not accepted: use C-<key>, e.g. C-q or C-]")
    return bytes((code - 0x40,))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
            continue
        view = view[n:]


def attach(name: str, socket_path: str, detach: bytes, stdin: int = 0, stdout: int = 1) -> int:
    from planeai.backends.daemon.client import DaemonClient
    from planeai.errors import BackendError

    wake_r, wake_w = os.pipe()
    state = {"end": None, "code": 0}
    out_lock = threading.Lock()

    def finish(message: str, code: int) -> None:
        if state["end"] is None:
            state["end"], state["code"] = message, code
        try:
            os.write(wake_w, b"x")
        except OSError:
            pass

    def on_output(n: str, data: bytes) -> None:
        if n == name:
            with out_lock:
                _write_all(stdout, data)

    def on_event(msg: dict) -> None:
        if msg.get("event") == "exit" and msg.get("name") == name:
            finish(f"[{name} exited with code {msg.get('code')}]", 0)
        elif msg.get("event") == "disconnected":
            finish(f"[lost the planeai daemon: {msg.get('reason')}]", 1)

    try:
        client = DaemonClient(socket_path, on_output=on_output, on_event=on_event)
    except BackendError as e:
        print(f"planeai: error: {e}", file=sys.stderr)
        return 1
    try:
        cols, rows = os.get_terminal_size(stdout)
    except OSError:
        cols, rows = 0, 0
    try:
        if cols and rows:
            client.request("resize", name=name, cols=cols, rows=rows)
        old = termios.tcgetattr(stdin) if os.isatty(stdin) else None
        with out_lock:
            snap = client.request("subscribe", name=name, snapshot=True)
            import base64

            _write_all(stdout, ENTER + base64.b64decode(snap["ansi"]))  # type: ignore[index]
    except BackendError as e:
        client.close()
        print(f"planeai: error: {e}", file=sys.stderr)
        return 1
    if not snap["alive"]:  # type: ignore[index]
        finish(f"[{name} has exited with code {snap['exit_code']}]", 0)  # type: ignore[index]

    def on_winch(*_a) -> None:
        try:
            os.write(wake_w, b"w")
        except OSError:
            pass

    prev_winch = signal.signal(signal.SIGWINCH, on_winch)
    if old is not None:
        tty.setraw(stdin)
    try:
        while state["end"] is None:
            try:
                ready, _, _ = select.select([stdin, wake_r], [], [])
            except InterruptedError:
                continue
            if wake_r in ready:
                marks = os.read(wake_r, 4096)
                if b"w" in marks:
                    try:
                        cols, rows = os.get_terminal_size(stdout)
                        client.request("resize", name=name, cols=cols, rows=rows)
                    except (OSError, BackendError):
                        pass
            if stdin in ready:
                data = os.read(stdin, 65536)
                if not data:
                    finish(f"[detached from {name}]", 0)
                    break
                cut = data.find(detach)
                if cut >= 0:
                    data = data[:cut]
                try:
                    if data:
                        client.send_input(name, data)
                except BackendError as e:
                    finish(f"[{e}]", 1)
                if cut >= 0:
                    finish(f"[detached from {name}]", 0)
    finally:
        signal.signal(signal.SIGWINCH, prev_winch)
        client.close()
        with out_lock:
            _write_all(stdout, RESTORE)
        if old is not None:
            termios.tcsetattr(stdin, termios.TCSAFLUSH, old)
        os.close(wake_r)
        os.close(wake_w)
    _write_all(stdout, (str(state["end"]) + "\r\n").encode())
    return int(state["code"])  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="planeai attach", description=__doc__.split("\n")[0])
    ap.add_argument("--socket", help="daemon socket (default: from PLANEAI_HOME)")
    ap.add_argument("--detach-key", default="C-q", help="C-<key> (default C-q)")
    ap.add_argument("name")
    a = ap.parse_args(argv)
    try:
        detach = parse_key(a.detach_key)
    except ValueError as e:
        print(f"planeai: error: {e}", file=sys.stderr)
        return 2
    if not os.isatty(0):
        print("planeai: error: attach needs a terminal; run it in an interactive shell",
              file=sys.stderr)
        return 1
    path = a.socket
    if not path:
        from planeai.backends.daemon import daemon_paths

        path = str(daemon_paths().socket)
    return attach(a.name, path, detach)


if __name__ == "__main__":
    sys.exit(main())
