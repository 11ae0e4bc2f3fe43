"""A scripted, offline stand-in for the OpenAI Responses API, for the real Codex CLI.

Codex (``@openai/codex``) talks to ``POST {base_url}/responses`` (``wire_api = "responses"``)
with ``stream: true`` and expects Responses SSE events. The same :class:`Text` and
:class:`ToolUse` blocks as :mod:`tests.support.anthropic_endpoint` are used; a ``ToolUse`` is
sent as a ``function_call`` to Codex's ``exec_command`` tool with ``{"cmd": command}`` (plus
``ToolUse.extra``, e.g. ``{"sandbox_permissions": "require_escalated", "justification": ...}``
to make Codex ask for approval).

Observed with codex-cli 0.169.0: every turn is ``POST /v1/responses`` (model, ``input`` list,
``tools`` = exec_command, write_stdin, request_user_input, ...). Side requests: after each user
message the interactive TUI asks for a task title ("Generate a concise, single-line task title
..."), with an empty ``tools`` list. The main conversation is a request with a non-empty
``tools`` list; only those consume the script. A tool result comes back as a
``function_call_output`` input item.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.anthropic_endpoint import DONE_TURN, Block, Script, Text, ToolUse, _split

__all__ = ["Text", "ToolUse", "ScriptedOpenAI", "is_main_request"]


def is_main_request(body: dict) -> bool:
    return bool(body.get("tools"))


def _side_answer(body: dict) -> str:
    return "Scripted task"


class ScriptedOpenAI:
    """Threaded local server speaking enough of the Responses API for Codex. Same API as
    :class:`tests.support.anthropic_endpoint.ScriptedAnthropic`; ``url`` ends in ``/v1``."""

    def __init__(self, script: Script, *, host: str = "127.0.0.1") -> None:
        self._script = script
        self._turns = None if callable(script) else [list(t) for t in script]
        self._host = host
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.requests: list[dict] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> "ScriptedOpenAI":
        handler = type("_Handler", (_Handler,), {"api": self})
        self._server = ThreadingHTTPServer((self._host, 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://{self._host}:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, name="scripted-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "ScriptedOpenAI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def main_turns(self) -> list[dict]:
        with self._lock:
            return [r["json"] for r in self.requests if r.get("main")]

    def _record(self, entry: dict) -> None:
        with self._lock:
            self.requests.append(entry)

    def _next_main_turn(self, body: dict) -> list[Block]:
        if self._turns is None:
            return list(self._script(body))  # type: ignore[operator]
        with self._lock:
            if self._turns:
                return self._turns.pop(0)
        return list(DONE_TURN)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):04d}{uuid.uuid4().hex[:20]}"


class _Handler(BaseHTTPRequestHandler):
    api: ScriptedOpenAI
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _entry(self, body: dict | None) -> dict:
        return {
            "time": time.time(),
            "method": self.command,
            "path": self.path.split("?", 1)[0],
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "json": body,
        }

    def _send_json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self) -> None:  # noqa: N802
        self.api._record(self._entry(None))
        self._send_json(200, {})

    def do_GET(self) -> None:  # noqa: N802
        entry = self._entry(None)
        self.api._record(entry)
        if entry["path"].endswith("/models"):
            self._send_json(200, {"object": "list", "data": [], "models": []})
        else:
            self._send_json(200, {})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = {}
        entry = self._entry(body)
        if not entry["path"].endswith("/responses"):
            self.api._record(entry)
            self._send_json(404, {"error": {"message": f"no route {entry['path']}", "type": "invalid_request_error"}})
            return
        entry["main"] = is_main_request(body)
        self.api._record(entry)
        blocks = self.api._next_main_turn(body) if entry["main"] else [Text(_side_answer(body))]
        self._stream(body, blocks)

    def _event(self, data: dict) -> None:
        self.wfile.write(f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    def _stream(self, body: dict, blocks: Sequence[Block]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        api = self.api
        resp = {
            "id": api._new_id("resp"),
            "object": "response",
            "created_at": int(time.time()),
            "status": "in_progress",
            "model": body.get("model"),
            "output": [],
        }
        try:
            self._event({"type": "response.created", "response": resp})
            outputs = []
            for index, b in enumerate(blocks):
                if isinstance(b, ToolUse):
                    args = {"cmd": b.command, **b.extra}
                    name = "exec_command" if b.name == "Bash" else b.name
                    item = {
                        "type": "function_call",
                        "id": api._new_id("fc"),
                        "call_id": api._new_id("call"),
                        "name": name,
                        "arguments": json.dumps(args),
                        "status": "completed",
                    }
                    self._event({"type": "response.output_item.added", "output_index": index, "item": item})
                    self._event({"type": "response.output_item.done", "output_index": index, "item": item})
                    outputs.append(item)
                    continue
                item_id = api._new_id("msg")
                self._event(
                    {
                        "type": "response.output_item.added",
                        "output_index": index,
                        "item": {"type": "message", "id": item_id, "role": "assistant", "status": "in_progress", "content": []},
                    }
                )
                if b.start_delay:
                    time.sleep(b.start_delay)
                for i, piece in enumerate(_split(b.text, b.chunks)):
                    if i and b.chunk_delay:
                        time.sleep(b.chunk_delay)
                    self._event(
                        {"type": "response.output_text.delta", "output_index": index, "item_id": item_id, "content_index": 0, "delta": piece}
                    )
                item = {
                    "type": "message",
                    "id": item_id,
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": b.text, "annotations": []}],
                }
                self._event({"type": "response.output_item.done", "output_index": index, "item": item})
                outputs.append(item)
            resp.update(
                status="completed",
                output=outputs,
                usage={
                    "input_tokens": 10,
                    "output_tokens": 10,
                    "total_tokens": 20,
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens_details": {"reasoning_tokens": 0},
                },
            )
            self._event({"type": "response.completed", "response": resp})
        except (BrokenPipeError, ConnectionResetError):
            pass
