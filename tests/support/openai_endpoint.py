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

import json
import time
from collections.abc import Sequence

from tests.support.anthropic_endpoint import (Block, JsonHandler, Script, ScriptedServer, Text,
                                             ToolUse, _split)

__all__ = ["Text", "ToolUse", "ScriptedOpenAI", "is_main_request"]


def is_main_request(body: dict) -> bool:
    return bool(body.get("tools"))


def _side_answer(body: dict) -> str:
    return "Scripted task"


class ScriptedOpenAI(ScriptedServer):
    """Threaded local server speaking enough of the Responses API for Codex. Same API as
    :class:`tests.support.anthropic_endpoint.ScriptedAnthropic`; ``url`` ends in ``/v1``."""

    url_suffix = "/v1"
    thread_name = "scripted-openai"

    def __init__(self, script: Script, *, host: str = "127.0.0.1") -> None:
        super().__init__(script, host=host)
        self.handler = _Handler


class _Handler(JsonHandler):
    api: ScriptedOpenAI

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
