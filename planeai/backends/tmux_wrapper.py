"""What runs in a tmux pane: a minimal sh wrapper around the agent, and the files it keeps.

The agent runs under a minimal sh (the session leader) that writes its pid and, at the end,
the agent's exit status to private files: tmux 3.3a now and then never reaps a pane's child
(pane dead, no status), and after the server died the pid still reaches the session.
Every string is a positional parameter ($0 status file, $1 directory, the rest argv): no
text is ever parsed by the shell. The agent runs in the background, so a hangup reaches sh
at once (a foreground child defers traps until it ends, and the agent outlived its server);
sh forwards HUP and TERM to it and waits again until it has really ended. Without job
control a background child stays in sh's process group, the terminal's foreground one, so
it reads the tty (fd 3 keeps it: sh gives background jobs /dev/null) and gets ^C; sh starts
it with SIGINT and SIGQUIT ignored, which ``reset_signals()`` undoes before exec. A process
that ignores the hangup too is ended by kill()/forget() (planeai.backends.procs).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

# The end, said in the pane's output: an OSC no terminal uses (tmux drops it, the screen
# does not change), so a control-mode watcher learns of the end from the %output stream
# instead of polling (planeai.backends.tmux); written once the status file is.
EXIT_MARK = b"\x1b]5379;planeai-exit\x07"
_BEFORE_MARK = (
    'printf %s "$$" > "$0.pid"; '
    'if cd -- "$1"; then shift; '
    'exec 3<&0; "$@" <&3 3<&- & c=$!; exec 3<&-; '
    'trap \'kill -HUP "$c" 2>/dev/null\' HUP; trap \'kill -TERM "$c" 2>/dev/null\' TERM; '
    'trap : INT QUIT; '
    'while :; do wait "$c"; s=$?; kill -0 "$c" 2>/dev/null || break; done; '
    'else s=1; fi; '
    'printf %s "$s" > "$0.tmp" && mv "$0.tmp" "$0"; ')
WRAPPER_SCRIPT = _BEFORE_MARK + "printf '\\033]5379;planeai-exit\\007'; exit \"$s\""
# wrappers of sessions started before the mark (still running after an upgrade)
_KNOWN_SCRIPTS = (WRAPPER_SCRIPT.encode(), (_BEFORE_MARK + 'exit "$s"').encode())
EXIT_WRAPPER = ["/bin/sh", "-c", WRAPPER_SCRIPT]

RESET = "INT,QUIT,HUP,TERM,PIPE"  # sh starts background jobs ignoring INT and QUIT, and
# planeai itself may have inherited ignored signals (nohup, `&`): the agent gets defaults
PY_RESET = ("import os, signal, sys\n"
            f"for n in {RESET!r}.split(','):\n"
            "    signal.signal(getattr(signal, 'SIG' + n), signal.SIG_DFL)\n"
            "try: os.execvp(sys.argv[1], sys.argv[1:])\n"
            "except OSError as e: sys.stderr.write(f'{sys.argv[1]}: {e.strerror}\\n')\n"
            "sys.exit(127)\n")


@functools.cache
def reset_signals() -> tuple[str, ...]:
    """A prefix that execs argv with default signal handling: GNU env (coreutils 8.31+), else
    a Python one-liner (it execs, so nothing stays behind)."""
    env = shutil.which("env") or "/usr/bin/env"
    try:
        ok = subprocess.run([env, f"--default-signal={RESET}", "true"], capture_output=True,
                            timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    if ok:
        return (env, f"--default-signal={RESET}")
    return (sys.executable, "-S", "-c", PY_RESET)


def wrapped_argv(status_file: str, cwd: str, argv: list[str]) -> list[str]:
    """The pane's argv: the wrapper, its files and directory, then the agent's argv."""
    # absolute: `cd -- -` would mean $OLDPWD, and CDPATH applies to relative paths only
    return [*EXIT_WRAPPER, status_file, os.path.abspath(cwd), *reset_signals(), *argv]


def is_wrapper(pid: int, status_file: Path) -> bool:
    """Is ``pid`` still the wrapper that writes ``status_file`` (and not a reused pid)?"""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return len(argv) > 3 and argv[2] in _KNOWN_SCRIPTS \
        and argv[3] == os.fsencode(str(status_file))


class WrapperFiles:
    """The wrappers' pid and status files of one tmux server, in a private directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def status_file(self, name: str) -> Path:
        """Where the wrapper of session ``name`` writes the agent's exit status (the
        directory is made mode 0700 first). Raises OSError when it cannot be made."""
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        return self.directory / name

    def fresh(self, name: str) -> Path:
        """The status file of a session about to start, with no files of an earlier run."""
        self.clear(name)
        return self.status_file(name)

    def pid_file(self, name: str) -> Path:
        """Where the wrapper of session ``name`` writes its own pid."""
        return self.status_file(name).with_name(name + ".pid")

    def clear(self, name: str) -> None:
        """Remove both files of ``name`` (those that exist)."""
        for f in (self.status_file(name), self.pid_file(name)):
            try:
                f.unlink()
            except OSError:
                pass

    def leader(self, name: str) -> int | None:
        """The wrapper's pid from its pid file, if that wrapper still runs: how a session
        whose tmux server died is still reached. None otherwise."""
        try:
            pid = int(self.pid_file(name).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid > 1 and is_wrapper(pid, self.status_file(name)) else None

    def status(self, name: str) -> int | None:
        """The exit status the wrapper recorded, None before it has ended (or unreadable)."""
        try:
            return int(self.status_file(name).read_text().strip())
        except (OSError, ValueError):
            return None
