"""Front doors of the Plane agent (planeai.services.plane_agent), feeding one worker thread:

- ``make_server``: Plane's webhook endpoint. Each delivery is verified (signature, delivery
  id, age: planeai.integrations.plane_webhook), answered 202 at once and handed to the worker;
- ``PlanePoller``: the workspace's activity feed filtered to prompts, for a planeai Plane
  cannot reach (webhooks go only to public URLs);
- ``PlaneWorker``: the thread that does the work: events in order, a watch pass over active
  runs, the periodic work (polling, sync);
- ``run_service``: all of it until told to stop (`planeai plane serve` / `plane poll`), one
  per database (a lease), so no run is answered twice.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Callable

from planeai.core import events as ev
from planeai.errors import PlaneaiError
from planeai.integrations import plane_webhook as wh
from planeai.services.plane_agent import PlaneAgent, nonempty, one_line

if TYPE_CHECKING:
    from planeai.integrations.plane import PlaneClient
    from planeai.services.sessions import SessionManager

FEED_SCOPE = "feed"     # tracker_sync scope holding the activity feed's poll time
FEED_MARGIN = 30.0      # the feed holds back its last 3 s: ask again this far back, dedupe
LEASE, LEASE_TTL = "plane.serve", 20.0  # one server per database (renewed every 5 s)


# ---------------------------------------------------------------------- the worker
class PlaneWorker:
    """The one thread that does the work: events from the webhook server or the poller,
    a watch pass over active runs every ``tick`` seconds, and the periodic sync."""

    def __init__(self, agent: PlaneAgent, *, tick: float = 0.25,
                 periodic: Callable[[], None] | None = None) -> None:
        self.agent = agent
        self.tick = tick
        self.periodic = periodic       # called every pass (the poller, the sync: each
        self.queue: "queue.Queue[tuple[str, dict]]" = queue.Queue()  # keeps its own clock)
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def submit(self, event: str, payload: dict) -> None:
        self.queue.put((event, payload))

    def start(self) -> "PlaneWorker":
        self.thread = threading.Thread(target=self.run, name="plane-worker", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def run(self) -> None:
        store = self.agent.store
        while not self.stop_event.is_set():
            try:
                event, payload = self.queue.get(timeout=self.tick)
            except queue.Empty:
                event = None
            try:
                if event is not None:
                    self.agent.handle(event, payload)
                if self.periodic is not None:
                    self.periodic()
                self.agent.tick()
            except Exception as e:  # noqa: BLE001 - the worker must outlive one bad pass
                store.append_event(ev.PLANE_ERROR, data={"error": one_line(e)})
                self.stop_event.wait(self.tick)


# ---------------------------------------------------------------------- webhooks
def make_server(host: str, port: int, *, secret: str | None, store, max_age: float,
                submit: Callable[[str, dict], None]) -> ThreadingHTTPServer:
    """Plane's webhook endpoint (any path): verified and checked for replays and age, then
    handed to ``submit`` and answered 202 at once; refused ones get their status
    (planeai.integrations.plane_webhook). Nothing is logged: headers carry signatures."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "planeai"

        def _reply(self, status: int, obj: dict) -> None:
            data = json.dumps(obj).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # a health check for a tunnel or load balancer
            self._reply(200, {"ok": True})

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= wh.BODY_MAX:
                self._reply(413 if length > 0 else 400, {"error": "bad Content-Length"})
                return
            body = self.rfile.read(length)
            try:
                d = wh.verify(dict(self.headers.items()), body, secret)
                wh.check_fresh(d, seen_before=store.plane_seen("delivery", d.delivery_id),
                               max_age=max_age)
                if not store.mark_plane_seen("delivery", d.delivery_id):
                    raise wh.WebhookRefused("delivery already received", 409)
            except wh.WebhookRefused as e:
                store.append_event(ev.PLANE_ERROR, data={"webhook": e.status,
                                                         "error": str(e)})
                self._reply(e.status, {"error": str(e)})
                return
            if d.event in wh.EVENTS:
                submit(d.event, d.payload)
            self._reply(202, {"accepted": d.event in wh.EVENTS})

        def log_message(self, format: str, *args) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


# ---------------------------------------------------------------------- polling
class PlanePoller:
    """New prompts from the workspace's activity feed (``type=prompt``), for a planeai
    Plane cannot reach: a prompt on a run planeai does not know starts it, one on a known
    run is a reply. The poll time is kept in ``tracker_sync`` (survives restarts); each
    activity is handled once (``plane_seen``)."""

    def __init__(self, agent: PlaneAgent, *, interval: float | None = None) -> None:
        self.agent = agent
        self.store = agent.store
        self.interval = agent.settings.poll_interval if interval is None else interval
        self._next = 0.0

    def maybe_poll(self) -> int:
        if time.monotonic() < self._next:
            return 0
        self._next = time.monotonic() + self.interval
        try:
            return self.poll_once()
        except PlaneaiError as e:
            self.store.set_tracker_sync_state("plane", FEED_SCOPE, last_error=str(e))
            return 0

    def poll_once(self) -> int:
        started = datetime.now(timezone.utc)
        state = self.store.tracker_sync_state("plane", FEED_SCOPE)
        max_age = self.agent.settings.max_age
        since = started - timedelta(seconds=max_age)
        if state is not None and state.cursor:
            try:
                since = max(since, datetime.fromisoformat(state.cursor)
                            - timedelta(seconds=FEED_MARGIN))
            except ValueError:
                pass
        handled = 0
        for page in self.agent.client.feed(type="prompt", since=since.isoformat()):
            for act in page.results:
                if not isinstance(act, dict) or not nonempty(act.get("id")) or \
                        self.store.plane_seen("activity", act["id"]):
                    continue
                born = wh.created_at({"agent_run_activity": act})
                if born is None or (started - born).total_seconds() > max_age:
                    self.store.mark_plane_seen("activity", act["id"])  # stale: never run
                    continue
                self._dispatch(act)
                handled += 1
        self.store.set_tracker_sync_state("plane", FEED_SCOPE, cursor=started.isoformat(),
                                          last_sync=started.isoformat(), last_error=None)
        return handled

    def _dispatch(self, act: dict) -> None:
        rid = nonempty(act.get("agent_run_id")) or ""
        known = self.store.plane_run(rid) is not None
        payload: dict = {"agent_run_activity": act, "agent_run": {"id": rid}}
        if not known:
            run = self.agent.client.get_run(rid)
            payload.update(agent_run=run, project_id=run.get("project_id"),
                           issue_id=run.get("issue_id") or run.get("work_item_id"))
        self.agent.handle("agent_run_user_prompt" if known else "agent_run_create", payload)


# ---------------------------------------------------------------------- the service
def run_service(manager: "SessionManager", client: "PlaneClient", *, stop: threading.Event,
                host: str = "127.0.0.1", port: int | None = None, secret: str | None = None,
                poll: bool = False, ready: Callable[[int | None], None] | None = None,
                tick: float = 0.25) -> None:
    """``planeai plane serve`` / ``plane poll`` until ``stop`` is set: the webhook server on
    ``host:port`` (None: no server), the feed poller when ``poll``, the periodic sync when
    ``[plane] sync_interval`` and projects are set; ``ready(port)`` once listening."""
    from planeai.services.plane_sync import PlaneSync, due

    agent = PlaneAgent(manager, client)
    settings = agent.settings
    store = manager.store
    if poll and settings.auth != "bearer":
        # called with a person's API key the feed holds every run that person can see,
        # other agents' too; with the app's bot token only this agent's runs
        raise PlaneaiError("polling needs the Plane app's bot token ([plane] auth = "
                           "\"bearer\", the token as PLANE_API_KEY): with a personal API key "
                           "the activity feed holds other agents' runs too")
    poller = PlanePoller(agent) if poll else None
    # one server acts per database: two would both watch every run and post twice
    holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    if not store.acquire_lease(LEASE, holder, LEASE_TTL):
        raise PlaneaiError(f"another `planeai plane serve` or `plane poll` is running "
                           f"({store.lease_holder(LEASE)}); one at a time per database")
    forget_at = [0.0]
    renew_at = [time.monotonic() + LEASE_TTL / 4]

    def periodic() -> None:
        if time.monotonic() >= renew_at[0]:
            if not store.acquire_lease(LEASE, holder, LEASE_TTL):
                store.append_event(ev.PLANE_ERROR, data={
                    "error": "the plane lease was taken over; this server stops"})
                stop.set()
                return
            renew_at[0] = time.monotonic() + LEASE_TTL / 4
        if poller is not None:
            poller.maybe_poll()
        if time.monotonic() >= forget_at[0]:
            # ids older than twice max_age are refused by age anyway: no need to keep them
            manager.store.forget_plane_seen(older_than=2 * settings.max_age)
            forget_at[0] = time.monotonic() + 600
        if settings.projects and settings.sync_interval > 0:
            states = manager.store.tracker_sync_states("plane")
            last = min((s.last_sync or "" for s in states if s.scope != FEED_SCOPE),
                       default="")
            if due(last or None, settings.sync_interval):
                PlaneSync(manager.store, manager.config, client).sync()

    worker = PlaneWorker(agent, tick=tick, periodic=periodic).start()
    server = None
    try:
        if port is not None:
            server = make_server(host, port, secret=secret, store=manager.store,
                                 max_age=settings.max_age, submit=worker.submit)
            t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                 name="plane-webhooks", daemon=True)
            t.start()
        if ready is not None:
            ready(server.server_port if server is not None else None)
        stop.wait()
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        worker.stop()
        store.release_lease(LEASE, holder)
