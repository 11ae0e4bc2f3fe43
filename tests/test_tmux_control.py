"""Tests of the tmux control-mode client against real tmux servers (one per test)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import PrivateTmux, retry_until
from planeai.backends.tmux_control import (
    CONTROL_SESSION,
    TmuxCommandError,
    TmuxControl,
    TmuxControlClosed,
    command_line,
    pane_target,
    quote_arg,
    unescape_output,
)
from planeai.backends.tmux_control.protocol import (
    Block,
    ControlParser,
    Notification,
    Output,
    notification_args,
    parse_stream,
)

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")

class Server:
    """A private tmux server (conftest's ``private_tmux`` with its user home): its socket name,
    environment and a fork-based runner."""

    def __init__(self, tmux: PrivateTmux, home: Path) -> None:
        self.socket_name = tmux.socket
        self.env = tmux.env()
        self.env.update(HOME=str(home), SHELL="/bin/sh", TERM="xterm-256color")
        self.socket_path = tmux.tmpdir / f"tmux-{os.getuid()}" / self.socket_name

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["tmux", "-L", self.socket_name, "-f", "/dev/null", *args],
            env=self.env, capture_output=True, text=True, check=check,
        )

    def control(self) -> TmuxControl:
        return TmuxControl(self.socket_name, env=self.env, config_file="/dev/null")


@pytest.fixture
def server(private_tmux: PrivateTmux, user_home: Path):
    srv = Server(private_tmux, user_home)
    try:
        yield srv
    finally:
        srv.tmux("kill-server", check=False)
        try:
            srv.socket_path.unlink()
        except FileNotFoundError:
            pass


@pytest.fixture
def ctl(server: Server):
    c = server.control()
    c.start()
    try:
        yield c
    finally:
        c.close()


def new_session(ctl: TmuxControl, name: str, cmd: str = "cat", x: int = 80, y: int = 24) -> None:
    ctl.command("new-session", "-d", "-s", name, "-x", str(x), "-y", str(y), cmd)


# -- pure helpers -----------------------------------------------------------------------------


def test_quote_arg_shapes() -> None:
    assert quote_arg("plain-word_1") == "plain-word_1"
    assert quote_arg("") == "''"
    assert quote_arg("a b") == "'a b'"
    assert quote_arg("it's") == "'it'\"'\"'s'"
    assert quote_arg("a\nb") == "'a'\"\\012\"'b'"
    assert quote_arg("%3") == "'%3'"
    with pytest.raises(ValueError):
        quote_arg("a\0b")


def test_unescape_output() -> None:
    assert unescape_output(b"plain") == b"plain"
    assert unescape_output(b"a\\015\\012b\\134c\\033[31m") == b"a\r\nb\\c\x1b[31m"
    assert unescape_output("é".encode()) == "é".encode()


def test_parser_matches_blocks_by_their_own_end_line() -> None:
    # pane text that looks like an %end of another block stays inside the block
    events = parse_stream(
        b"%begin 100 7 0\n%end 100 7 0\n"  # the attach command's block (flags 0)
        b"%begin 101 8 1\nline one\n%end 101 9 1\n%error 100 8 1\nlast\n%end 101 8 1\n"
        b"%begin 102 9 1\nbad command\n%error 102 9 1\n"
        b"stray text\n"
    )
    assert events == [
        Block(ours=False, error=False, lines=[]),
        Block(ours=True, error=False,
              lines=[b"line one", b"%end 101 9 1", b"%error 100 8 1", b"last"]),
        Block(ours=True, error=True, lines=[b"bad command"]),
    ]


def test_parser_output_and_notifications() -> None:
    events = parse_stream(
        b"%output %3 a\\015\\012b\n"
        b"%extended-output %4 12 : x y\n"
        b"%sessions-changed\n"
        b"%window-renamed @1 name with spaces\n"
        b"%exit\n"
    )
    assert events == [
        Output("%3", b"a\\015\\012b"),
        Output("%4", b"x y"),
        Notification("sessions-changed", ""),
        Notification("window-renamed", "@1 name with spaces"),
        Notification("exit", ""),
    ]
    assert unescape_output(events[0].data) == b"a\r\nb"
    # a free-form last argument is kept whole; others split on spaces
    assert notification_args("window-renamed", "@1 name with spaces") == ["@1", "name with spaces"]
    assert notification_args("window-close", "@3") == ["@3"]
    assert notification_args("client-session-changed", "/dev/pts/1 $1 my s") == [
        "/dev/pts/1", "$1", "my s"]
    assert notification_args("sessions-changed", "") == []


def test_parser_keeps_state_across_feeds() -> None:
    parser = ControlParser()
    assert parser.feed(b"%begin 1 1 1\n") is None
    assert parser.feed(b"%output %1 inside a block is text\n") is None
    assert parser.feed(b"%end 1 1 1\n") == Block(True, False,
                                                [b"%output %1 inside a block is text"])
    assert parser.feed(b"%output %1 now output") == Output("%1", b"now output")


def test_command_line_quotes_every_argument() -> None:
    assert command_line(["display-message", "-p", "a b"]) == "display-message -p 'a b'"
    assert pane_target("=S") == "=S:" and pane_target("=S:1") == "=S:1"
    assert pane_target("%3") == "%3"
    with pytest.raises(ValueError):
        command_line([])


# -- commands ---------------------------------------------------------------------------------


def test_command_and_error(ctl: TmuxControl) -> None:
    assert ctl.alive
    assert ctl.command("display-message", "-p", "hello") == ["hello"]
    with pytest.raises(TmuxCommandError, match="unknown command"):
        ctl.command("no-such-command")
    with pytest.raises(TmuxCommandError, match="can't find session"):
        ctl.command("has-session", "-t", "=missing")
    # the client is still usable after errors
    assert ctl.command("display-message", "-p", "#{e|+:1,2}") == ["3"]
    # an empty result and a multi-line result
    assert ctl.command("set-option", "-g", "@x", "1") == []
    new_session(ctl, "S1")
    new_session(ctl, "S2")
    names = ctl.command("list-sessions", "-F", "#{session_name}")
    assert sorted(names) == sorted(["S1", "S2", CONTROL_SESSION])


def test_commands_pipelined_with_errors(ctl: TmuxControl) -> None:
    res = ctl.commands(
        [["display-message", "-p", "one"], ["bogus-command"], ["display-message", "-p", "three"]]
    )
    assert res[0] == ["one"]
    assert isinstance(res[1], TmuxCommandError)
    assert res[2] == ["three"]
    assert ctl.commands([]) == []


def test_multi_block_commands_stay_in_sync(ctl: TmuxControl) -> None:
    # if-shell runs its command as a second block; the answer must not shift later replies.
    assert ctl.command("if-shell", "-F", "1", "display-message -p yes",
                       "display-message -p no") == ["yes"]
    assert ctl.command("display-message", "-p", "after") == ["after"]


NASTY = [
    "",
    " ",
    "two words",
    "it's",
    'say "hi"',
    "semi;colon",
    "trailing;",
    " ; ",
    "\\;",
    "#{pane_id} #S ##",
    "$HOME ${HOME} $(id)",
    "~",
    "~/x",
    "{ brace }",
    "}",
    "line1\nline2",
    "back\\slash\\",
    "\\n literally",
    "tab\there",
    "ctl\x01\x1b[31m\x7f",
    "cr\rlf",
    "unicode é € 日本 🚀",
    "%hidden",
    "%if",
    "-dash",
    "'",
    '"',
    "'\"'\"",
]


@pytest.mark.parametrize("value", NASTY, ids=[repr(v) for v in NASTY])
def test_quoting_round_trip(ctl: TmuxControl, value: str) -> None:
    ctl.command("set-environment", "-g", "PLANEAI_V", value)
    assert "\n".join(ctl.command("show-environment", "-g", "PLANEAI_V")) == "PLANEAI_V=" + value
    ctl.command("set-option", "-g", "@planeai_v", value)
    assert "\n".join(ctl.command("show-options", "-gv", "@planeai_v")) == value


def test_quoting_in_display_message(ctl: TmuxControl) -> None:
    # display-message expands formats itself, but the parser must deliver the text verbatim.
    for value in ["a;b", "it's", "x\ty", "$HOME", "~", "{}", "é"]:
        assert ctl.command("display-message", "-p", value) == [value]


def test_concurrent_commands_from_threads(ctl: TmuxControl) -> None:
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for j in range(100):
                token = f"t{i}-{j}"
                assert ctl.command("display-message", "-p", token) == [token]
                if j % 10 == 0:
                    with pytest.raises(TmuxCommandError):
                        ctl.command("has-session", "-t", f"=nope{i}")
                    res = ctl.commands(
                        [["display-message", "-p", f"{token}-a"],
                         ["display-message", "-p", f"{token}-b"]]
                    )
                    assert res == [[f"{token}-a"], [f"{token}-b"]]
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]


# -- capture ----------------------------------------------------------------------------------


def test_capture_panes_of_several_sessions(ctl: TmuxControl, server: Server) -> None:
    names = [f"PLA-{i}" for i in range(1, 6)]
    for n in names:
        new_session(ctl, n, f"printf '\\033[32mhello {n}\\033[0m\\n'; exec cat")

    def all_printed() -> dict[str, str | None] | None:
        got = ctl.capture_panes([f"={n}" for n in names] + ["=missing"], escapes=False)
        ok = all(f"hello {n}" in (got[f"={n}"] or "") for n in names)
        return got if ok else None

    got = retry_until(all_printed)
    assert got["=missing"] is None
    # With escapes the colour survives, and the text equals what a forked capture prints.
    esc = ctl.capture_pane("=PLA-3")
    assert "\x1b[32mhello PLA-3" in esc
    forked = server.tmux("capture-pane", "-p", "-e", "-t", "=PLA-3:").stdout
    assert esc == forked
    # start/end
    first = ctl.capture_pane("=PLA-3", escapes=False, start=0, end=0)
    assert first == "hello PLA-3\n"


def test_exact_target_does_not_prefix_match(ctl: TmuxControl) -> None:
    new_session(ctl, "PLA-12", "printf 'I am twelve\\n'; exec cat")
    retry_until(lambda: "twelve" in ctl.capture_pane("=PLA-12", escapes=False))
    # "PLA-1" alone would prefix-match PLA-12; the exact form must not.
    with pytest.raises(TmuxCommandError):
        ctl.capture_pane("=PLA-1")
    assert ctl.capture_panes(["=PLA-1", "=PLA-12"])["=PLA-1"] is None
    new_session(ctl, "PLA-1", "printf 'I am one\\n'; exec cat")
    retry_until(lambda: "I am one" in ctl.capture_pane("=PLA-1", escapes=False))
    assert "twelve" not in ctl.capture_pane("=PLA-1", escapes=False)


# -- output and events ------------------------------------------------------------------------


def test_output_listener_receives_bytes(ctl: TmuxControl, tmp_path: Path) -> None:
    chunks: list[tuple[str, bytes]] = []
    lock = threading.Lock()

    def on_output(pane: str, data: bytes) -> None:
        with lock:
            chunks.append((pane, data))

    # The pane waits for a line, then prints UTF-8, colours, control chars and a backslash.
    script = tmp_path / "emit.sh"
    script.write_text(
        "read x\n"
        "printf 'h\\303\\251llo \\342\\234\\223 \\033[31mred\\033[0m \\001\\007 \\134 back\\n'\n"
        "exec cat\n"
    )
    expected = "héllo ✓ \x1b[31mred\x1b[0m \x01\x07 \\ back\r\n".encode()

    ctl.add_output_listener(on_output)
    new_session(ctl, "PLA-1", f"sh {script}")
    new_session(ctl, "PLA-12", f"sh {script}")
    (pane_1,) = ctl.command("display-message", "-p", "-t", "=PLA-1:", "#{pane_id}")
    (pane_12,) = ctl.command("display-message", "-p", "-t", "=PLA-12:", "#{pane_id}")
    ctl.watch("PLA-1")
    assert ctl.watched == {"PLA-1"}

    ctl.command("send-keys", "-t", "=PLA-12:", "go", "Enter")
    ctl.command("send-keys", "-t", "=PLA-1:", "go", "Enter")

    def received() -> bytes | None:
        with lock:
            data = b"".join(d for p, d in chunks if p == pane_1)
        return data if expected in data else None

    retry_until(received)
    # PLA-12 printed too (a prefix match of "PLA-1"), but it is not watched.
    retry_until(lambda: "back" in ctl.capture_pane("=PLA-12", escapes=False))
    ctl.command("display-message", "-p", "sync")
    with lock:
        assert all(p != pane_12 for p, _ in chunks)

    # no-output: nothing arrives while off, and it flows again when back on
    ctl.set_output(False)
    with lock:
        chunks.clear()
    ctl.command("send-keys", "-t", "=PLA-1:", "-l", "silent")
    retry_until(lambda: "silent" in ctl.capture_pane("=PLA-1", escapes=False))
    ctl.command("display-message", "-p", "sync")
    with lock:
        assert not any(b"silent" in d for _, d in chunks)
    ctl.set_output(True)
    ctl.command("send-keys", "-t", "=PLA-1:", "-l", "loud")
    retry_until(lambda: any(b"loud" in d for _, d in list(chunks)))

    ctl.unwatch("PLA-1")
    assert ctl.watched == set()


def test_event_listener_and_watch_end(ctl: TmuxControl) -> None:
    events: list[tuple[str, list[str]]] = []
    ctl.add_event_listener(lambda n, a: events.append((n, a)))
    new_session(ctl, "PLA-7")
    retry_until(lambda: any(n == "sessions-changed" for n, _ in list(events)))
    ctl.watch("PLA-7")
    ctl.command("kill-session", "-t", "=PLA-7")
    retry_until(lambda: ("watch-ended", ["PLA-7"]) in list(events))
    assert ctl.watched == set()
    assert ctl.alive


def test_list_sessions_and_exit_status(ctl: TmuxControl) -> None:
    new_session(ctl, "PLA-1", "cat")
    ctl.command("set-option", "-g", "remain-on-exit", "on")
    new_session(ctl, "PLA-3", "exit 3")

    def sessions() -> dict[str, dict] | None:
        got = {s["name"]: s for s in ctl.list_sessions()}
        ok = "PLA-3" in got and got["PLA-3"]["pane_dead"]
        return got if ok else None

    got = retry_until(sessions)
    assert CONTROL_SESSION not in got
    assert got["PLA-1"]["pane_dead"] is False
    assert got["PLA-1"]["pane_pid"] and got["PLA-1"]["pane_id"].startswith("%")
    assert got["PLA-1"]["session_id"].startswith("$")
    # tmux marks the pane dead on the pty's EOF and learns the status with SIGCHLD, a bit later
    # (and tmux 3.3a under load now and then never: the backend's wrapper records the code in
    # a file for that, tested in test_tmux_hardening.py). When tmux has it, it parses as 3.
    assert got["PLA-3"]["pane_dead_status"] in (3, None)
    assert ctl.has_session("PLA-1") and not ctl.has_session("PLA")


# -- lifecycle --------------------------------------------------------------------------------


def test_server_killed(ctl: TmuxControl, server: Server) -> None:
    events: list[tuple[str, list[str]]] = []
    ctl.add_event_listener(lambda n, a: events.append((n, a)))
    new_session(ctl, "PLA-1")
    server.tmux("kill-server")
    retry_until(lambda: not ctl.alive)
    with pytest.raises(TmuxControlClosed):
        ctl.command("display-message", "-p", "x")
    with pytest.raises(TmuxControlClosed):
        ctl.capture_panes(["=PLA-1"])
    # the reader thread says so once it has read the end (the process may be seen gone first)
    retry_until(lambda: any(n == "exit" for n, _ in events), message="the exit event")


def test_start_with_running_server_and_close_keeps_sessions(server: Server) -> None:
    server.tmux("new-session", "-d", "-s", "keep", "cat")
    with server.control() as a, server.control() as b:
        assert a.command("display-message", "-p", "a") == ["a"]
        assert b.command("display-message", "-p", "b") == ["b"]
        assert [s["name"] for s in a.list_sessions()] == ["keep"]
    assert not a.alive and not b.alive
    out = server.tmux("list-sessions", "-F", "#{session_name}").stdout.split()
    # the hidden session stays (destroy-unattached crashed tmux 3.3a under concurrent clients)
    assert sorted(out) == sorted(["keep", CONTROL_SESSION])
    opts = server.tmux("show-options", "-t", CONTROL_SESSION).stdout
    assert "destroy-unattached on" not in opts


def test_control_session_does_not_resize(ctl: TmuxControl, server: Server) -> None:
    ctl.command("new-session", "-d", "-s", "big", "-x", "200", "-y", "50", "cat")
    ctl.command("new-session", "-d", "-s", "small", "-x", "20", "-y", "5", "cat")
    ctl.watch("big")
    ctl.watch("small")
    ctl.command("send-keys", "-t", "=big:", "-l", "x" * 300)
    ctl.command("refresh-client", "-S")
    size = "#{window_width}x#{window_height}"
    for _ in range(3):  # ask both through control mode and from a plain forked client
        assert ctl.command("display-message", "-p", "-t", "=big:", size) == ["200x50"]
        assert ctl.command("display-message", "-p", "-t", "=small:", size) == ["20x5"]
        assert server.tmux("display-message", "-p", "-t", "=big:", size).stdout.strip() == "200x50"
    # and a session created through the control client without -x/-y gets default-size
    ctl.command("new-session", "-d", "-s", "plain", "cat")
    assert ctl.command("display-message", "-p", "-t", "=plain:", size) == ["80x24"]


def test_not_started_raises(server: Server) -> None:
    c = server.control()
    assert not c.alive
    with pytest.raises(TmuxControlClosed):
        c.command("display-message", "-p", "x")


def test_paused_pane_is_continued(ctl: TmuxControl) -> None:
    events: list[tuple[str, list[str]]] = []
    ctl.add_event_listener(lambda n, a: events.append((n, a)))
    new_session(ctl, "PLA-5", "cat")
    (pane,) = ctl.command("display-message", "-p", "-t", "=PLA-5:", "#{pane_id}")
    ctl.watch("PLA-5")
    (client,) = [
        line.split(" ", 1)[0]
        for line in ctl.command("list-clients", "-F", "#{client_name} #{session_name}")
        if line.endswith(" PLA-5")
    ]
    # What tmux does when a watcher falls pause-after seconds behind, forced by hand:
    ctl.command("refresh-client", "-t", client, "-A", f"{pane}:pause")
    retry_until(lambda: ("pause", [pane, "PLA-5"]) in list(events))
    retry_until(lambda: ("continue", [pane, "PLA-5"]) in list(events))
    received: list[bytes] = []
    ctl.add_output_listener(lambda p, d: received.append(d) if p == pane else None)
    ctl.command("send-keys", "-t", "=PLA-5:", "-l", "after-pause")
    retry_until(lambda: b"after-pause" in b"".join(list(received)))


def test_watch_missing_session_fails(ctl: TmuxControl) -> None:
    with pytest.raises((TmuxCommandError, TmuxControlClosed), match="missing"):
        ctl.watch("missing")
    assert ctl.watched == set()
    assert ctl.alive


def test_start_failure_is_reported(server: Server) -> None:
    c = TmuxControl(server.socket_name, env=server.env, tmux_bin="/nonexistent/tmux")
    with pytest.raises(TmuxControlClosed, match="nonexistent"):
        c.start()
    assert not c.alive
