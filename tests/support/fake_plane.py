"""A local Plane for tests: a threaded HTTP server on 127.0.0.1 that follows Plane's
documented API (developers.plane.so; facts in ../shared/DESIGN.md), and sends signed agent
webhooks the way Plane does.

What it serves (all under ``/api/v1/workspaces/{slug}/`` unless said, trailing slashes):
- ``projects/{pid}/`` (identifier), ``projects/{pid}/states/``, ``projects/{pid}/work-items/``
  (GET, paged with ``per_page`` <= 100 and ``cursor`` = ``"per_page:page:is_prev"``; pages
  carry ``results``, ``next_cursor``, ``prev_cursor``, ``next_page_results``,
  ``prev_page_results``, ``count``, ``total_pages``, ``total_results``),
  ``work-items/{id}/`` (GET, PATCH), ``work-items/{id}/comments/`` (POST ``comment_html``);
- ``runs/{run_id}/`` and ``runs/{run_id}/activities/`` (GET with ``type``; POST
  ``{type, content, signal?}``: thought/action keep the run in_progress, response completes
  it, elicitation makes it awaiting, error fails it);
- v2 ``/api/v2/workspaces/{slug}/agent-run-activities/``: the workspace feed, oldest first,
  filters ``type`` and ``created_at__gte``; like Plane it holds back the last ``hold_back``
  seconds of activities from a created_at__gte poll.
Auth: ``X-API-Key`` or ``Authorization: Bearer`` equal to ``api_key``, else 401. Requests,
patches, comments and posted activities are recorded for the tests to check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE_GROUPS = (("Backlog", "backlog"), ("Todo", "unstarted"), ("In Progress", "started"),
                ("Done", "completed"), ("Cancelled", "cancelled"))
RUN_STATUS = {"thought": "in_progress", "action": "in_progress", "response": "completed",
              "elicitation": "awaiting", "error": "failed", "prompt": "in_progress"}
ACTIVITY_TYPES = ("prompt", "thought", "action", "response", "elicitation", "error")


def iso(t: datetime | None = None) -> str:
    return (t or datetime.now(timezone.utc)).isoformat().replace("+00:00", "Z")


class FakePlane:
    def __init__(self, *, workspace: str = "acme", api_key: str = "plane_api_test",
                 hold_back: float = 3.0) -> None:
        self.workspace, self.api_key, self.hold_back = workspace, api_key, hold_back
        self.lock = threading.RLock()
        self.projects: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.activities: list[dict] = []          # every activity, in creation order
        self.comments: list[dict] = []
        self.patches: list[dict] = []
        self.requests: list[tuple[str, str]] = []
        self.fail_next: list[tuple[int, dict, bytes]] = []  # (status, headers, body)
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ data
    def add_project(self, identifier: str = "WEB") -> str:
        pid = str(uuid.uuid4())
        states = [{"id": str(uuid.uuid4()), "name": n, "group": g} for n, g in STATE_GROUPS]
        with self.lock:
            self.projects[pid] = {"id": pid, "identifier": identifier, "name": identifier,
                                  "states": states, "items": [], "seq": 0}
        return pid

    def state_id(self, pid: str, group: str) -> str:
        return next(s["id"] for s in self.projects[pid]["states"] if s["group"] == group)

    def state_group(self, pid: str, state_id: str) -> str:
        return next(s["group"] for s in self.projects[pid]["states"] if s["id"] == state_id)

    def add_item(self, pid: str, name: str, description: str = "", *,
                 priority: str = "none") -> dict:
        with self.lock:
            p = self.projects[pid]
            p["seq"] += 1
            item = {"id": str(uuid.uuid4()), "name": name, "sequence_id": p["seq"],
                    "description_html": f"<p>{description}</p>",
                    "description_stripped": description, "priority": priority,
                    "state": self.state_id(pid, "unstarted"), "assignees": [],
                    "project": pid, "workspace": self.workspace,
                    "created_at": iso(), "updated_at": iso()}
            p["items"].append(item)
            return item

    def item(self, pid: str, item_id: str) -> dict | None:
        return next((i for i in self.projects[pid]["items"] if i["id"] == item_id), None)

    def remove_item(self, pid: str, item_id: str) -> None:
        with self.lock:
            self.projects[pid]["items"] = [i for i in self.projects[pid]["items"]
                                           if i["id"] != item_id]

    def create_run(self, pid: str, issue_id: str, prompt: str, *,
                   age: float = 0.0) -> tuple[dict, dict]:
        """A person mentions the agent in a comment: a run and its first prompt activity."""
        born = datetime.now(timezone.utc) - timedelta(seconds=age)
        run = {"id": str(uuid.uuid4()), "status": "created", "type": "comment_thread",
               "project_id": pid, "issue_id": issue_id, "workspace": self.workspace,
               "comment_id": str(uuid.uuid4()), "created_at": iso(born),
               "updated_at": iso(born)}
        with self.lock:
            self.runs[run["id"]] = run
        return run, self._activity(run["id"], "prompt", {"type": "prompt", "body": prompt},
                                   created=born)

    def user_prompt(self, run_id: str, text: str, *, signal: str = "continue") -> dict:
        return self._activity(run_id, "prompt", {"type": "prompt", "body": text},
                              signal=signal)

    def _activity(self, run_id: str, type: str, content: dict, *, signal: str = "continue",
                  created: datetime | None = None) -> dict:
        act = {"id": str(uuid.uuid4()), "agent_run_id": run_id, "type": type,
               "content": content, "signal": signal, "signal_metadata": {},
               "ephemeral": type in ("thought", "action", "error"),
               "created_at": iso(created), "_t": (created or datetime.now(timezone.utc))}
        with self.lock:
            self.activities.append(act)
            run = self.runs[run_id]
            run["status"] = RUN_STATUS[type]
            run["updated_at"] = iso()
        return act

    def posted(self, run_id: str) -> list[dict]:
        """The agent's activities on a run (everything but the people's prompts), in order."""
        with self.lock:
            return [a for a in self.activities if a["agent_run_id"] == run_id
                    and a["type"] != "prompt"]

    @staticmethod
    def public(act: dict) -> dict:
        return {k: v for k, v in act.items() if not k.startswith("_")}

    # ------------------------------------------------------------------ webhooks
    def payload(self, event: str, run: dict, activity: dict) -> dict:
        return {"event": event,
                "action": "created" if event == "agent_run_create" else "prompted",
                "agent_run": dict(run), "agent_run_activity": self.public(activity),
                "issue_id": run["issue_id"], "project_id": run["project_id"],
                "workspace_id": self.workspace, "comment_id": run["comment_id"]}

    @staticmethod
    def sign(secret: str, body: bytes) -> str:
        return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    def send_webhook(self, url: str, event: str, payload: dict, *, secret: str | None,
                     signature: str | None = None, delivery: str | None = None,
                     body: bytes | None = None) -> tuple[int, float]:
        """POST a delivery like Plane: (status, seconds to answer). ``secret`` None sends
        no signature; ``signature`` overrides the computed one."""
        body = body if body is not None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "X-Plane-Event": event,
                   "X-Plane-Delivery": delivery or str(uuid.uuid4())}
        if signature is not None:
            headers["X-Plane-Signature"] = signature
        elif secret is not None:
            headers["X-Plane-Signature"] = self.sign(secret, body)
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, time.monotonic() - started
        except urllib.error.HTTPError as e:
            return e.code, time.monotonic() - started

    # ------------------------------------------------------------------ server
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> "FakePlane":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_PATCH(self) -> None:
                fake._handle(self, "PATCH")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _reply(self, h, status: int, obj=None, headers: dict | None = None,
               raw: bytes | None = None) -> None:
        data = raw if raw is not None else (b"" if obj is None else json.dumps(obj).encode())
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _handle(self, h, method: str) -> None:
        parts = urllib.parse.urlsplit(h.path)
        q = dict(urllib.parse.parse_qsl(parts.query))
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length) or b"null") if length else None
        with self.lock:
            self.requests.append((method, h.path))
            if self.fail_next:
                status, headers, raw = self.fail_next.pop(0)
                self._reply(h, status, headers=headers, raw=raw)
                return
        key = h.headers.get("X-API-Key") or (h.headers.get("Authorization") or "").removeprefix(
            "Bearer ")
        if key != self.api_key:
            self._reply(h, 401, {"detail": "Authentication credentials were not provided."})
            return
        path = parts.path
        v1 = f"/api/v1/workspaces/{self.workspace}/"
        v2 = f"/api/v2/workspaces/{self.workspace}/"
        if not path.endswith("/"):
            self._reply(h, 404, {"detail": "Not found."})
            return
        if path == v2 + "agent-run-activities/" and method == "GET":
            return self._feed(h, q)
        if not path.startswith(v1):
            self._reply(h, 404, {"detail": "Not found."})
            return
        seg = path[len(v1):].strip("/").split("/")
        with self.lock:
            if seg[0] == "projects" and len(seg) >= 2 and seg[1] in self.projects:
                return self._project(h, method, seg[1], seg[2:], q, body)
            if seg[0] == "runs" and len(seg) >= 2 and seg[1] in self.runs:
                return self._run(h, method, self.runs[seg[1]], seg[2:], q, body)
        self._reply(h, 404, {"detail": "Not found."})

    def _paged(self, h, rows: list, q: dict) -> None:
        try:
            per_page = min(int(q.get("per_page", 100)), 100)
            cursor = q.get("cursor") or f"{per_page}:0:0"
            c_per, page, _prev = (int(x) for x in cursor.split(":"))
        except ValueError:
            self._reply(h, 400, {"error": "Invalid cursor format"})
            return
        start = page * c_per
        chunk = rows[start:start + c_per]
        more = start + c_per < len(rows)
        self._reply(h, 200, {
            "results": chunk, "count": len(chunk), "total_results": len(rows),
            "total_pages": max(1, -(-len(rows) // c_per)),
            "next_cursor": f"{c_per}:{page + 1}:0", "prev_cursor": f"{c_per}:{page - 1}:1",
            "next_page_results": more, "prev_page_results": page > 0, "extra_stats": None})

    def _project(self, h, method: str, pid: str, rest: list, q: dict, body) -> None:
        p = self.projects[pid]
        if not rest and method == "GET":
            return self._reply(h, 200, {k: p[k] for k in ("id", "identifier", "name")})
        if rest == ["states"] and method == "GET":
            return self._paged(h, p["states"], q)
        if rest == ["work-items"] and method == "GET":
            return self._paged(h, list(p["items"]), q)
        if len(rest) >= 2 and rest[0] == "work-items":
            item = self.item(pid, rest[1])
            if item is None:
                return self._reply(h, 404, {"detail": "Not found."})
            if len(rest) == 2 and method == "GET":
                return self._reply(h, 200, item)
            if len(rest) == 2 and method == "PATCH" and isinstance(body, dict):
                self.patches.append({"project": pid, "item": item["id"], "body": body})
                item.update(body)
                item["updated_at"] = iso()
                return self._reply(h, 200, item)
            if rest[2:] == ["comments"] and method == "POST":
                if not isinstance(body, dict) or not isinstance(body.get("comment_html"), str):
                    return self._reply(h, 400, {"comment_html": ["This field is required."]})
                c = {"id": str(uuid.uuid4()), "project": pid, "issue": item["id"],
                     "comment_html": body["comment_html"], "created_at": iso()}
                self.comments.append(c)
                return self._reply(h, 201, c)
        self._reply(h, 404, {"detail": "Not found."})

    def _run(self, h, method: str, run: dict, rest: list, q: dict, body) -> None:
        if not rest and method == "GET":
            return self._reply(h, 200, run)
        if rest == ["activities"] and method == "GET":
            rows = [self.public(a) for a in self.activities if a["agent_run_id"] == run["id"]
                    and (not q.get("type") or a["type"] == q["type"])]
            return self._paged(h, rows, q)
        if rest == ["activities"] and method == "POST":
            if not isinstance(body, dict) or body.get("type") not in ACTIVITY_TYPES[1:]:
                return self._reply(h, 400, {"type": ["Not a valid choice."]})
            content = body.get("content")
            ok = isinstance(content, dict) and content.get("type") == body["type"] and (
                isinstance(content.get("body"), str) if body["type"] != "action"
                else isinstance(content.get("action"), str))
            if not ok:
                return self._reply(h, 400, {"content": ["Invalid content for this type."]})
            act = self._activity(run["id"], body["type"], content,
                                 signal=body.get("signal") or "continue")
            return self._reply(h, 201, self.public(act))
        self._reply(h, 404, {"detail": "Not found."})

    def _feed(self, h, q: dict) -> None:
        if q.get("type") and q["type"] not in ACTIVITY_TYPES:
            return self._reply(h, 400, {"error": "invalid_request"})
        since = None
        if q.get("created_at__gte"):
            try:
                since = datetime.fromisoformat(q["created_at__gte"].replace("Z", "+00:00"))
            except ValueError:
                return self._reply(h, 400, {"error": "invalid_request"})
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=self.hold_back)
        with self.lock:
            rows = [self.public(a) for a in self.activities
                    if (not q.get("type") or a["type"] == q["type"])
                    and (since is None or a["_t"] >= since) and a["_t"] <= cutoff]
        self._paged(h, rows, q)
