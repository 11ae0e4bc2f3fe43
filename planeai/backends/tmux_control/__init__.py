"""A persistent tmux control-mode client (``tmux -C``).

Modules: :mod:`.protocol` (the wire format, pure), :mod:`.connection` (one ``tmux -C`` process
and its reader), :mod:`.server` (the per-server lock and environment), :mod:`.client`
(:class:`TmuxControl`, what callers use). Import names from this package.

One ``tmux -C`` process is kept open on a dedicated server (``tmux -L <socket>``) and every
command is written to its stdin as one line; tmux answers each command with a
``%begin TIME NUM FLAGS`` ... ``%end``/``%error TIME NUM FLAGS`` block, in the order the commands
were sent. Notifications (``%output``, ``%sessions-changed``, ``%exit`` ...) arrive between blocks.
A capture over this channel costs ~0.3 ms instead of ~2.2 ms for a fork of ``tmux``.

Facts this module relies on (checked on tmux 3.3a):

* A control client must be attached to a session or it exits. The main client attaches to a
  hidden session ``__planeai_ctl`` that stays for the server's life (``new-session -A``: the
  server runs commands one at a time, so six clients starting at once make one session).
* tmux 3.3a segfaults (the server, so every session, dies) when it sends a control-mode
  notification (``%client-detached``, ``%sessions-changed``, ``%layout-change``...) to a
  control client that is still identifying itself (its control state is not set up yet:
  tmux PRs #4980, #5004). Six planeai commands at once did it within seconds, with or without
  ``destroy-unattached``. So planeai's processes take one lock per server (:class:`ServerLock`,
  an flock next to the socket) while a control client connects, while one leaves (until the
  server has dropped it), and around every command that can notify; and windows do not
  rename themselves (``automatic-rename off``: a rename is a notification too). What planeai
  cannot order is a person attaching to or detaching from the server at that very moment.
* The server is started by our control client, and a fresh server keeps its starter's
  environment as the global one (``show-environment -g``), inherited by every pane: the client
  runs with :func:`server_env` (no provider keys) and in ``/`` (a start directory is expanded
  as a format, and the server keeps its starter's cwd).
* A control client only receives ``%output`` for panes of windows in *its attached session*.
  The hidden session has one silent pane, so the main client receives no pane output at all.
  To stream a session's output call :meth:`TmuxControl.watch`, which attaches one extra control
  client to that session (flags ``ignore-size``) and feeds the same output listeners.
* Size: a control client that never sent ``refresh-client -C WxH`` is ignored when tmux sizes
  windows, and a client only takes part in sizing windows of the session it is attached to.
  Both clients also set the ``ignore-size`` client flag. So neither the hidden session nor a
  watcher changes the size of any agent session.
* Quoting: each argument is sent single-quoted; a ``'`` is sent as ``"'"`` and control
  characters (newline, tab, ESC ...) as double-quoted octal escapes ``"\\012"``; adjacent quoted
  pieces concatenate into one word, as in sh. Inside single quotes tmux expands nothing
  (``$``, ``~``, ``#``, ``;``, ``{}``, ``\\`` are literal). NUL cannot be sent. Note that some
  commands (``display-message``, ``-F`` formats, ``new-session`` commands) still expand
  ``#{...}`` formats *in their own semantics*; that is not the parser's doing.
* ``if-shell``/``source-file`` produce more than one block; :meth:`TmuxControl.command` handles
  them with a trailing marker command. ``new-session`` without ``-d`` run through the control
  client would *switch the control client* into the new session: always pass ``-d``.
* Target a session exactly with ``=NAME``; a *pane* or *window* target needs ``=NAME:``
  (``capture-pane -t =A`` fails with "can't find pane: =A"). :meth:`capture_pane` adds the
  colon for you.
"""

from planeai.backends.tmux_control.client import CONTROL_SESSION, TmuxControl
from planeai.backends.tmux_control.errors import (TmuxCommandError, TmuxControlClosed,
                                                  TmuxTimeout)
from planeai.backends.tmux_control.protocol import (command_line, pane_target, quote_arg,
                                                    unescape_output)
from planeai.backends.tmux_control.server import ServerLock, server_env

__all__ = [
    "CONTROL_SESSION",
    "ServerLock",
    "TmuxCommandError",
    "TmuxControl",
    "TmuxControlClosed",
    "TmuxTimeout",
    "command_line",
    "pane_target",
    "quote_arg",
    "server_env",
    "unescape_output",
]
