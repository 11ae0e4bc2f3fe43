"""A Jira Cloud REST v3 stand-in on 127.0.0.1, following the documented API (see
/work/shared/DESIGN.md, "Tracker APIs"):

- ``POST /rest/api/3/search/jql`` with ``jql``, ``fields``, ``maxResults``, ``nextPageToken``;
  replies ``{issues, nextPageToken, isLast}`` (no total, no startAt); only the requested
  fields come back; ``maxResults`` is capped at 100; the old ``/rest/api/3/search`` answers 410;
- ``GET|POST /rest/api/3/issue/{key}/transitions`` (``{"transition": {"id"}}`` -> 204);
- ``POST /rest/api/3/issue/{key}/comment`` (``{"body": <ADF>}`` -> 201);
- Basic auth ``email:api_token`` on every request (401 with ``errorMessages`` otherwise).

Faults are scripted per request number of the search endpoint (``fail_search(n, ...)``):
401, 429 with Retry-After, 500/503, a body that is not JSON. Comments and transitions are
recorded for the test to read.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

SEARCH = "/rest/api/3/search/jql"
MAX_RESULTS = 100
WORKFLOW = [  # transition id, name, target status
    ("11", "To Do", "To Do"), ("21", "Start work", "In Progress"), ("31", "Done", "Done")]


def adf(text: str) -> dict:
    return {"version": 1, "type": "doc", "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": line}]}
        for line in text.split("\n\n")]}


def adf_text(doc) -> str:
    """The plain text of an ADF document (what a person reads in Jira)."""
    out: list[str] = []

    def walk(n):
        if isinstance(n, dict):
            if n.get("type") == "text":
                out.append(n.get("text", ""))
            elif n.get("type") == "hardBreak":
                out.append("\n")
            for c in n.get("content") or []:
                walk(c)
            if n.get("type") == "paragraph":
                out.append("\n\n")
    walk(doc)
    return "".join(out).strip()


@dataclass
class Fault:
    status: int | None = None      # an HTTP error status
    retry_after: str | None = None
    malformed: bool = False        # 200 with a body that is not JSON
    location: str | None = None    # a redirect's target
    raw: bytes | None = None       # 200 with exactly this body


class FakeJira:
    def __init__(self, *, email: str = "dev@example.com", token: str = "jira-token-1") -> None:
        self.email, self.token = email, token
        self.issues: dict[str, dict] = {}          # key -> issue, in creation order
        self.filters: dict[str, list[str]] = {}    # jql -> keys (default: every issue)
        self.comments: list[tuple[str, dict]] = []
        self.transitions: list[tuple[str, str]] = []
        self.search_calls = 0
        self.requests: list[tuple[str, str]] = []
        self.faults: dict[int, Fault] = {}         # search call number (1-based) -> fault
        self.lock = threading.Lock()
        self._next_id = 10000
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ------------------------------------------------------------------ setup
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "FakeJira":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_issue(self, key: str, summary: str, *, description: str = "", status: str = "To Do",
                  priority: str = "Medium", assignee: str | None = "Dev One") -> dict:
        with self.lock:
            self._next_id += 1
            issue = {"id": str(self._next_id), "key": key,
                     "self": f"{self.url}/rest/api/3/issue/{self._next_id}",
                     "fields": {"summary": summary,
                                "description": adf(description) if description else None,
                                "status": {"name": status, "statusCategory": {"key": "new"}},
                                "priority": {"name": priority, "id": "3"},
                                "assignee": {"displayName": assignee,
                                             "accountId": "5b10a2844c20165700ede21g"}
                                if assignee else None,
                                "updated": "2026-11-30T10:00:00.000+0000"}}
            self.issues[key] = issue
            return issue

    def edit(self, key: str, **fields) -> None:
        with self.lock:
            f = self.issues[key]["fields"]
            for k, v in fields.items():
                f[k] = {"name": v} if k in ("status", "priority") else v
            f["updated"] = "2026-11-30T11:00:00.000+0000"

    def remove(self, key: str) -> None:
        with self.lock:
            del self.issues[key]

    def fail_search(self, call: int, *, status: int | None = None,
                    retry_after: str | None = None, malformed: bool = False,
                    location: str | None = None, raw: bytes | None = None) -> None:
        """Make search request number ``call`` (counting from 1, over the server's life)
        fail this way."""
        self.faults[call] = Fault(status, retry_after, malformed, location, raw)

    def comments_on(self, key: str) -> list[str]:
        return [adf_text(body) for k, body in self.comments if k == key]

    # ------------------------------------------------------------------ the API
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def _send(self, status: int, body=None, headers: dict | None = None,
                      raw: bytes | None = None) -> None:
                data = raw if raw is not None else (
                    b"" if body is None else json.dumps(body).encode())
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    return json.loads(raw) if raw else None
                except ValueError:
                    return None

            def _authed(self) -> bool:
                want = base64.b64encode(f"{fake.email}:{fake.token}".encode()).decode()
                if self.headers.get("Authorization") == f"Basic {want}":
                    return True
                self._send(401, {"errorMessages": [
                    "Client must be authenticated to access this resource."], "errors": {}})
                return False

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

            def _route(self, method: str) -> None:
                path = urlsplit(self.path).path
                body = self._body() if method == "POST" else None
                with fake.lock:
                    fake.requests.append((method, path))
                if path == "/rest/api/3/search":
                    return self._send(410, {"errorMessages": [
                        "The requested API has been removed. Please migrate to "
                        "/rest/api/3/search/jql."]})
                if path == SEARCH and method == "POST":
                    with fake.lock:
                        fake.search_calls += 1
                        fault = fake.faults.get(fake.search_calls)
                    if fault and fault.status == 401:
                        return self._send(401, {"errorMessages": ["Unauthorized"]})
                    if not self._authed():
                        return
                    if fault and fault.status:
                        hdrs = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                        if fault.location:
                            hdrs["Location"] = fault.location
                        if fault.status == 429:
                            hdrs.update({"X-RateLimit-Limit": "100",
                                         "X-RateLimit-Remaining": "0"})
                        return self._send(fault.status, {"errorMessages": ["fault"]}, hdrs)
                    if fault and fault.malformed:
                        return self._send(200, raw=b'{"issues": [ <html>oops')
                    if fault and fault.raw is not None:
                        return self._send(200, raw=fault.raw)
                    return self._search(body or {})
                if not self._authed():
                    return
                parts = path.split("/")
                # /rest/api/3/issue/{key}/{what}
                if len(parts) == 7 and parts[1:5] == ["rest", "api", "3", "issue"]:
                    key, what = unquote(parts[5]), parts[6]
                    with fake.lock:
                        issue = fake.issues.get(key)
                    if issue is None:
                        return self._send(404, {"errorMessages": [
                            "Issue does not exist or you do not have permission to see it."]})
                    if what == "transitions" and method == "GET":
                        return self._send(200, {"expand": "transitions", "transitions": [
                            {"id": i, "name": n, "to": {"name": to, "id": i}, "hasScreen": False}
                            for i, n, to in WORKFLOW]})
                    if what == "transitions" and method == "POST":
                        tid = ((body or {}).get("transition") or {}).get("id")
                        target = [to for i, _, to in WORKFLOW if i == tid]
                        if not target:
                            return self._send(400, {"errorMessages": [
                                f"Transition id '{tid}' is not valid for this issue."]})
                        with fake.lock:
                            fake.transitions.append((key, tid))
                            issue["fields"]["status"] = {"name": target[0]}
                        return self._send(204)
                    if what == "comment" and method == "POST":
                        doc = (body or {}).get("body")
                        if not isinstance(doc, dict) or doc.get("type") != "doc":
                            return self._send(400, {"errorMessages": [],
                                                    "errors": {"body": "Comment body is not ADF"}})
                        with fake.lock:
                            fake.comments.append((key, doc))
                            cid = str(20000 + len(fake.comments))
                        return self._send(201, {"id": cid, "body": doc})
                self._send(404, {"errorMessages": ["not found"]})

            def _search(self, req: dict) -> None:
                jql = req.get("jql", "")
                fields = req.get("fields") or []
                size = min(int(req.get("maxResults") or 50), MAX_RESULTS)
                token = req.get("nextPageToken")
                start = int(base64.urlsafe_b64decode(token).decode()) if token else 0
                with fake.lock:
                    keys = [k for k in fake.filters.get(jql, list(fake.issues))
                            if k in fake.issues]
                    page = []
                    for k in keys[start:start + size]:
                        issue = fake.issues[k]
                        page.append({"id": issue["id"], "key": k, "self": issue["self"],
                                     "fields": {f: issue["fields"].get(f) for f in fields
                                                if f in issue["fields"]}})
                more = start + size < len(keys)
                out: dict = {"issues": page, "isLast": not more}
                if more:
                    out["nextPageToken"] = base64.urlsafe_b64encode(
                        str(start + size).encode()).decode()
                self._send(200, out)

        return Handler
