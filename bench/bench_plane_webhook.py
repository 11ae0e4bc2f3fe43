"""How fast `planeai plane serve` answers a Plane webhook (signature check, replay check in
the database, queued for the background worker), against an anchor measured in the same run:
a bare ThreadingHTTPServer that answers 202 without looking at the request.

Target (issue 15): within milliseconds; Plane only needs the answer, the work comes later.

    python bench/bench_plane_webhook.py
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

N = 300
SECRET = "whsec_bench"


def post(url: str, body: bytes, headers: dict) -> float:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pbw-") as tmp:
        os.environ["PLANEAI_HOME"] = str(Path(tmp) / "home")
        from support.fake_plane import FakePlane

        from planeai.services.context import open_store
        from planeai.services.plane_serve import make_server

        store = open_store()
        queued = []
        server = make_server("127.0.0.1", 0, secret=SECRET, store=store, max_age=600,
                             submit=lambda e, p: queued.append(e))
        threading.Thread(target=server.serve_forever, daemon=True).start()

        class Bare(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a) -> None:
                pass

        bare = ThreadingHTTPServer(("127.0.0.1", 0), Bare)
        threading.Thread(target=bare.serve_forever, daemon=True).start()

        ours, anchor = [], []
        for _ in range(N):
            now = datetime.now(timezone.utc).isoformat()
            body = json.dumps({"action": "created", "agent_run": {
                "id": str(uuid.uuid4()), "created_at": now}, "agent_run_activity": {
                "id": str(uuid.uuid4()), "type": "prompt", "created_at": now,
                "content": {"type": "prompt", "body": "hello"}}}).encode()
            headers = {"Content-Type": "application/json", "X-Plane-Event": "agent_run_create",
                       "X-Plane-Delivery": str(uuid.uuid4()),
                       "X-Plane-Signature": FakePlane.sign(SECRET, body)}
            ours.append(post(f"http://127.0.0.1:{server.server_port}/", body, headers))
            anchor.append(post(f"http://127.0.0.1:{bare.server_port}/", body, headers))
        assert len(queued) == N
        print(f"webhook answered (median of {N}): planeai {statistics.median(ours):.2f} ms, "
              f"bare server {statistics.median(anchor):.2f} ms")
        server.shutdown()
        bare.shutdown()
        store.close()


if __name__ == "__main__":
    main()
