"""What each request of the daemon's wire protocol does (``protocol`` has the format).

One ``op_<name>`` method per request after ``hello`` (the server answers that one while it
greets a connection). Each takes the client, the decoded request and a ``reply`` callable; it
returns the result to send, or ``DEFERRED`` when it calls ``reply`` itself later (``kill``,
``forget`` and ``shutdown`` answer once the program is reaped). RequestError, PlaneaiError
and bad arguments (KeyError, TypeError, ValueError) become an error answer; the connection
stays open.
"""

from __future__ import annotations

import base64
import os
from typing import TYPE_CHECKING, Any, Callable

from planeai.backends.base import bracketed, check_name
from planeai.backends.daemon import protocol as P
from planeai.backends.daemon.sessions import RequestError

if TYPE_CHECKING:
    from planeai.backends.daemon.server import Client, Server

DEFERRED = object()   # an op's result when it answers later through ``reply``
Reply = Callable[[Any], None]


class Requests:
    """The request handlers of one ``Server``, over its ``sessions``."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.sessions = server.sessions

    def handler(self, op) -> Callable[[Client, dict, Reply], Any] | None:
        """The method that answers ``op``, None for an unknown request."""
        if not isinstance(op, str) or not op.isidentifier():
            return None
        return getattr(self, f"op_{op}", None)

    def op_status(self, c, msg, reply):
        srv = self.server
        return {"pid": os.getpid(), "started": srv.started, "version": P.VERSION,
                "socket": str(srv.paths.socket), "clients": len(srv.clients),
                "dropped": srv.dropped, "rejected": srv.rejected,
                "sessions": [s.info() for s in self.sessions.values()]}

    def op_list(self, c, msg, reply):
        return [s.info() for s in self.sessions.values()]

    def op_info(self, c, msg, reply):
        s = self.sessions.find(msg["name"])
        return s.info() if s else None

    def op_spawn(self, c, msg, reply):
        if self.server.stopping:
            raise RequestError("the daemon is shutting down")
        name = check_name(str(msg["name"]))
        argv = [str(a) for a in msg["argv"]]
        env = {str(k): str(v) for k, v in dict(msg["env"]).items()}
        s = self.sessions.spawn(name, argv, cwd=str(msg["cwd"]), env=env,
                                cols=msg.get("cols", 120), rows=msg.get("rows", 40))
        return s.info()

    def op_write(self, c, msg, reply):
        self.sessions.queue_input(self.sessions.get(msg["name"]),
                                  base64.b64decode(msg["data"]))
        return None

    def op_paste(self, c, msg, reply):
        s = self.sessions.get(msg["name"])
        self.sessions.queue_input(s, bracketed(str(msg["text"]), s.screen.bracketed_paste))
        return None

    def op_resize(self, c, msg, reply):
        self.sessions.resize(self.sessions.get(msg["name"]), msg["cols"], msg["rows"])
        return None

    def op_snapshot(self, c, msg, reply):
        return self.sessions.get(msg["name"]).snapshot()

    def op_scrollback(self, c, msg, reply):
        return self.sessions.get(msg["name"]).scrollback_lines()

    def op_subscribe(self, c, msg, reply):
        """From now on this client gets the session's output; with ``snapshot`` the reply
        carries the current screen, so screen + stream have no gap and no overlap."""
        s = self.sessions.get(msg["name"])
        s.subscribers.add(c)
        c.subs.add(s.name)
        return s.snapshot() if msg.get("snapshot") else s.info()

    def op_unsubscribe(self, c, msg, reply):
        s = self.sessions.find(msg["name"])
        if s is not None:
            s.subscribers.discard(c)
        c.subs.discard(msg["name"])
        return None

    def op_kill(self, c, msg, reply):
        s = self.sessions.get(msg["name"])
        if not s.alive:
            return s.exit_code
        self.sessions.start_kill(s, float(msg.get("wait", 5.0)), reply)
        return DEFERRED

    def op_forget(self, c, msg, reply):
        s = self.sessions.find(msg["name"])
        if s is None:
            return None
        if not s.alive:
            self.sessions.remove(s)
            return None

        def done(_code) -> None:
            if self.sessions.find(s.name) is s:
                self.sessions.remove(s)
            reply(None)

        self.sessions.start_kill(s, float(msg.get("wait", 5.0)), done)
        return DEFERRED

    def op_shutdown(self, c, msg, reply):
        self.server.begin_shutdown(reply)
        return DEFERRED
