"""A scripted, offline stand-in for the Anthropic Messages API.

Real agent CLIs (Claude Code) honour ``ANTHROPIC_BASE_URL``; pointed at this server they run
end to end without a network: the server streams scripted assistant turns (text and ``Bash``
``tool_use`` blocks) in the Anthropic SSE format and the CLI really executes the tools.

Stdlib only. Usage::

    with ScriptedAnthropic([[ToolUse("touch x")], [Text("made it")]]) as api:
        env = claude_env(home, [project], api.url)
        ...
    api.requests        # every request seen (method, path, headers, json)
    api.main_turns()    # the requests that belong to the main agent conversation

What Claude Code 2.1.197 actually sent (every request logged, ``-p`` and interactive, with and
without ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC``/``DISABLE_TELEMETRY``):

* ``HEAD /`` once at start (user agent ``Bun/...``: a connectivity probe) - answered 200;
* ``POST /v1/messages?beta=true``, ``stream: true``, model ``claude-opus-4-8``, ``max_tokens``
  64000, 24 tools (``-p``) or 27-28 tools (interactive), one per assistant turn; a tool result
  comes back as the last user message (``tool_result`` block) and asks for the next turn.

No title/topic generation, quota probe or ``count_tokens`` call was seen against a custom base
URL, but other versions or settings may send them, so the server answers them without touching the
script: ``/v1/messages`` requests *without* ``tools`` get a short text (or small JSON when the
system prompt asks for JSON), ``/v1/messages/count_tokens`` gets ``{"input_tokens": n}``, and
``GET /v1/models`` a one-model list. Unknown POST paths get 404.

The main conversation is recognised by a request that carries ``tools`` (the agent offers its
tool set, including ``Bash``); only those requests consume the script. (A scripted ``Agent``/
``Task`` tool call would start a sub-agent, which also sends tools and would consume turns.)
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union

__all__ = ["Text", "ToolUse", "ScriptedAnthropic", "ScriptedServer", "JsonHandler", "is_main_request"]


@dataclass
class Text:
    """A text block, streamed as ``chunks`` text deltas with ``chunk_delay`` seconds between them
    (and ``start_delay`` seconds before the first one: the CLI shows its "thinking" spinner)."""

    text: str
    chunk_delay: float = 0.0
    chunks: int = 1
    start_delay: float = 0.0


@dataclass
class ToolUse:
    """A ``tool_use`` block; by default a ``Bash`` call running ``command``."""

    command: str
    name: str = "Bash"
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # more input fields, passed through

    def input(self) -> dict[str, Any]:
        data: dict[str, Any] = {"command": self.command}
        if self.description:
            data["description"] = self.description
        data.update(self.extra)
        return data


Block = Union[Text, ToolUse]
Turn = list[Block]
Script = Union[Callable[[dict], Sequence[Block]], Sequence[Sequence[Block]]]

DONE_TURN: Turn = [Text("Done.")]


def is_main_request(body: dict) -> bool:
    """True if a ``/v1/messages`` request belongs to the main agent conversation.

    Observed: the main agent loop always offers its tools; side requests (title generation,
    quota probe, suggestions) never do.
    """
    return bool(body.get("tools"))


def _side_answer(body: dict) -> str:
    """A sensible short answer for a side request (title, topic, quota ...)."""
    system = body.get("system")
    if isinstance(system, list):
        system = " ".join(b.get("text", "") for b in system if isinstance(b, dict))
    system = (system or "").lower()
    if "json" in system:
        # Title / topic helpers ask for small JSON objects.
        if "isnewtopic" in system:
            return json.dumps({"isNewTopic": False, "title": None})
        return json.dumps({"title": "Scripted session"})
    return "Scripted session"


def _split(text: str, n: int) -> list[str]:
    n = max(1, min(n, len(text) or 1))
    size, rest = divmod(len(text), n)
    out, pos = [], 0
    for i in range(n):
        step = size + (1 if i < rest else 0)
        out.append(text[pos : pos + step])
        pos += step
    return out


class ScriptedServer:
    """A threaded HTTP server on 127.0.0.1 serving scripted model turns; the API-specific
    subclasses (Anthropic here, OpenAI in openai_endpoint.py) add their wire format.

    ``script`` is either a list of turns (each a list of :class:`Text` / :class:`ToolUse`
    blocks) served in order to the main conversation, or a callable ``(request_json) ->
    blocks`` called for every main-conversation request. Once a list script is exhausted every
    further main turn is ``Text("Done.")``.
    """

    handler: type[BaseHTTPRequestHandler]
    url_suffix = ""
    thread_name = "scripted-model"

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

    # -- lifecycle -------------------------------------------------------------------------
    def start(self):
        handler = type("_Handler", (self.handler,), {"api": self})
        self._server = ThreadingHTTPServer((self._host, 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://{self._host}:{self._server.server_address[1]}{self.url_suffix}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=self.thread_name, daemon=True)
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

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inspection ------------------------------------------------------------------------
    def main_turns(self) -> list[dict]:
        """The JSON bodies of requests judged to be the main agent conversation."""
        with self._lock:
            return [r["json"] for r in self.requests if r.get("main")]

    def remaining_turns(self) -> int:
        with self._lock:
            return len(self._turns) if self._turns is not None else 0

    # -- internals -------------------------------------------------------------------------
    def _record(self, entry: dict) -> None:
        with self._lock:
            self.requests.append(entry)

    def _next_main_turn(self, body: dict) -> Turn:
        if self._turns is None:
            return list(self._script(body))  # type: ignore[operator]
        with self._lock:
            if self._turns:
                return self._turns.pop(0)
        return list(DONE_TURN)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):04d}{uuid.uuid4().hex[:20]}"


class JsonHandler(BaseHTTPRequestHandler):
    """Request plumbing shared by the scripted APIs: quiet, JSON in and out, HEAD probes."""

    api: ScriptedServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _read_json(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return {"_raw": raw.decode("utf-8", "replace")}

    def _entry(self, body: dict | None) -> dict:
        return {
            "time": time.time(),
            "method": self.command,
            "path": self.path.split("?", 1)[0],
            "query": self.path.split("?", 1)[1] if "?" in self.path else "",
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "json": body,
        }

    def _send_json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", self.api._new_id("req"))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self) -> None:  # noqa: N802
        self.api._record(self._entry(None))
        self._send_json(200, {})


class ScriptedAnthropic(ScriptedServer):
    """Speaks enough of the Anthropic Messages API (streaming SSE) for Claude Code."""

    thread_name = "scripted-anthropic"

    def __init__(self, script: Script, *, host: str = "127.0.0.1",
                 model: str = "claude-sonnet-4-5", usage: dict[str, int] | None = None) -> None:
        super().__init__(script, host=host)
        self._model = model
        # the usage every response reports (input/output/cache tokens), for metrics tests
        self.usage = {"input_tokens": 10, "output_tokens": 10, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, **(usage or {})}
        self.handler = _Handler

    def main_turns(self) -> list[dict]:
        with self._lock:
            return [r["json"] for r in self.requests
                    if r["method"] == "POST" and r["path"] == "/v1/messages" and r.get("main")]


class _Handler(JsonHandler):
    api: ScriptedAnthropic

    def do_GET(self) -> None:  # noqa: N802
        entry = self._entry(None)
        self.api._record(entry)
        path = entry["path"]
        if path.startswith("/v1/models"):
            self._send_json(
                200,
                {
                    "data": [
                        {"type": "model", "id": self.api._model, "display_name": "Scripted", "created_at": "2025-01-01T00:00:00Z"}
                    ],
                    "has_more": False,
                    "first_id": self.api._model,
                    "last_id": self.api._model,
                },
            )
        else:
            self._send_json(200, {})

    def do_POST(self) -> None:  # noqa: N802
        body = self._read_json()
        entry = self._entry(body)
        path = entry["path"]
        if path == "/v1/messages/count_tokens":
            self.api._record(entry)
            text = json.dumps(body.get("messages", []))
            self._send_json(200, {"input_tokens": max(1, len(text) // 4)})
            return
        if path != "/v1/messages":
            self.api._record(entry)
            self._send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": f"no route {path}"}})
            return

        main = is_main_request(body)
        entry["main"] = main
        self.api._record(entry)
        if main:
            blocks = self.api._next_main_turn(body)
        else:
            blocks = [Text(_side_answer(body))]
        if body.get("stream"):
            self._stream(body, blocks)
        else:
            self._send_json(200, self._message(body, blocks))

    # -- responses -------------------------------------------------------------------------
    def _stop_reason(self, blocks: Sequence[Block]) -> str:
        return "tool_use" if blocks and isinstance(blocks[-1], ToolUse) else "end_turn"

    def _content(self, blocks: Sequence[Block]) -> list[dict]:
        out = []
        for b in blocks:
            if isinstance(b, ToolUse):
                out.append({"type": "tool_use", "id": self.api._new_id("toolu"), "name": b.name, "input": b.input()})
            else:
                out.append({"type": "text", "text": b.text})
        return out

    def _message(self, body: dict, blocks: Sequence[Block]) -> dict:
        return {
            "id": self.api._new_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": body.get("model") or self.api._model,
            "content": self._content(blocks),
            "stop_reason": self._stop_reason(blocks),
            "stop_sequence": None,
            "usage": dict(self.api.usage),
        }

    def _event(self, name: str, data: dict) -> None:
        self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    def _stream(self, body: dict, blocks: Sequence[Block]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.send_header("request-id", self.api._new_id("req"))
        self.end_headers()
        self.close_connection = True
        try:
            msg = self._message(body, [])
            msg["usage"]["output_tokens"] = 1
            self._event("message_start", {"type": "message_start", "message": msg})
            self._event("ping", {"type": "ping"})
            for index, b in enumerate(blocks):
                if isinstance(b, ToolUse):
                    block = {"type": "tool_use", "id": self.api._new_id("toolu"), "name": b.name, "input": {}}
                    self._event("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})
                    self._event(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": json.dumps(b.input())}},
                    )
                else:
                    self._event(
                        "content_block_start",
                        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                    )
                    if b.start_delay:
                        time.sleep(b.start_delay)
                    for i, piece in enumerate(_split(b.text, b.chunks)):
                        if i and b.chunk_delay:
                            time.sleep(b.chunk_delay)
                        self._event(
                            "content_block_delta",
                            {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}},
                        )
                self._event("content_block_stop", {"type": "content_block_stop", "index": index})
            self._event(
                "message_delta",
                {"type": "message_delta", "delta": {"stop_reason": self._stop_reason(blocks), "stop_sequence": None}, "usage": {"output_tokens": self.api.usage["output_tokens"]}},
            )
            self._event("message_stop", {"type": "message_stop"})
        except (BrokenPipeError, ConnectionResetError):
            pass
