"""Claude Code's session transcripts: ``<config dir>/projects/<cwd>/<session uuid>.jsonl``.

The config dir is ``$CLAUDE_CONFIG_DIR``, else ``$HOME/.claude``; the directory name is the
working directory with every character but ASCII letters and digits made ``-`` (2.1.197:
``/tmp/my_proj.x/wt`` -> ``-tmp-my-proj-x-wt``). Every record carries ``cwd``, ``timestamp``
and ``sessionId``; an assistant record carries ``message.id``, ``message.model`` and
``message.usage`` (``input_tokens``, ``output_tokens``, ``cache_creation_input_tokens``,
``cache_read_input_tokens``). One API response with several content blocks is written as
several consecutive records with the same ``message.id`` and usage: counted once, the last
record's figures winning. Sub-agents write their own files under ``<session uuid>/subagents/``
(measured with 2.1.197 against a scripted endpoint).
"""

from __future__ import annotations

import json
import os
import re

from planeai.agents_usage.jsonl import Cursor, first_record, read_new
from planeai.agents_usage.records import Window, add_tokens, parse_ts
from planeai.agents_usage.usage import Tokens

_UNSAFE = re.compile(r"[^A-Za-z0-9]")


def project_dir_name(cwd: str) -> str:
    return _UNSAFE.sub("-", cwd)


_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens",
               "cache_read_input_tokens")


def _usage(u: dict) -> list[int]:
    """[input, output, cache write, cache read] (Tokens' order); anything but a count is 0."""
    out = []
    for k in _USAGE_KEYS:
        v = u.get(k)
        out.append(v if type(v) is int and v >= 0 else 0)
    return out


_ID = re.compile(rb'"id":"([^"\\]+)"')
_MODEL = re.compile(rb'"model":"([^"\\]+)"')
_COUNT = re.compile(rb'"(input_tokens|output_tokens|cache_creation_input_tokens|'
                    rb'cache_read_input_tokens)":(\d+)[,}]')


def _fast(line: bytes) -> tuple[str, str, dict] | None:
    """(message id, model, usage) of an assistant record without decoding its content
    (most of the line): 2.1.197 writes ``"message":{"id":..,"type":..,"role":..,"model":..,
    "content":[..],..,"usage":{..}`` . None unless the line has exactly that shape (the
    caller then decodes it whole), so another layout is never misread."""
    m = line.find(b'"message":{')
    c = line.find(b'"content":', m)
    if m < 0 or c < 0:
        return None
    head = line[m:c]
    mid, model = _ID.search(head), _MODEL.search(head)
    u = line.rfind(b'"usage":{"input_tokens"')
    if mid is None or model is None or u < c or b'"role":"assistant"' not in head:
        return None
    usage: dict = {}
    for k, v in _COUNT.findall(line, u, u + 1000):  # the first of each key: usage's own
        usage.setdefault(k.decode(), int(v))
    return mid.group(1).decode(), model.group(1).decode(), usage


def _want(line: bytes) -> bool:
    return b'"usage"' in line


def _decode(line: bytes):
    fast = _fast(line)
    if fast is not None:
        return fast
    rec = json.loads(line)
    if not isinstance(rec, dict):
        raise ValueError("not a JSON object")
    msg = rec.get("message")
    if rec.get("type") != "assistant" or not isinstance(msg, dict):
        return None
    usage, model = msg.get("usage"), msg.get("model")
    if not isinstance(usage, dict) or not isinstance(model, str):
        return None
    return msg.get("id"), model, usage


def _subagents(session_dir: str, start: float) -> list[str]:
    """A sub-agent's (Agent tool) transcript: ``<session uuid>/subagents/agent-<id>.jsonl``
    next to the main one, its records ``isSidechain: true`` and in no other file (2.1.197)."""
    try:
        entries = os.scandir(os.path.join(session_dir, "subagents"))
    except OSError:
        return []
    with entries:
        return [e.path for e in entries
                if e.name.endswith(".jsonl") and e.stat().st_mtime >= start]


class ClaudeTranscripts:
    name = "claude"

    def _dirs(self, w: Window) -> list[str]:
        root = w.env.get("CLAUDE_CONFIG_DIR") or os.path.join(w.home(), ".claude")
        names = {project_dir_name(c) for c in w.cwds()}
        return [os.path.join(root, "projects", n) for n in sorted(names)]

    def candidates(self, w: Window) -> list[str]:
        out = []
        start = w.start.timestamp() - 5
        for d in self._dirs(w):
            try:
                entries = os.scandir(d)
            except OSError:
                continue
            with entries:
                for e in entries:
                    # a transcript last written before the session started is not its own
                    if e.stat().st_mtime < start:
                        continue
                    if e.name.endswith(".jsonl"):
                        out.append(e.path)
                    elif e.is_dir():
                        out += _subagents(e.path, start)
        return out

    def belongs(self, path: str, w: Window) -> bool | None:
        rec = first_record(path, lambda r: "cwd" in r and "timestamp" in r, max_lines=50)
        if rec is None:
            return None
        ts = parse_ts(rec.get("timestamp"))
        return rec.get("cwd") in w.cwds() and ts is not None and w.holds(ts)

    def read(self, path: str, state: dict) -> bool:
        cur = Cursor.from_list(state.get("cur"))
        chunk = read_new(path, cur, _want, _decode)
        if chunk is None:
            return False
        if chunk.restarted:
            state.clear()
        last_id, last = state.get("last_id"), state.get("last")
        grown: dict[str, list[int]] = {}  # summed here, added to the state once
        for rec in chunk.records:
            if rec is None:
                continue
            mid, model, usage = rec
            t = _usage(usage)
            if mid is not None and mid == last_id and last:
                # the same response again (its next content block): replace, do not add
                g = grown.setdefault(last[0], [0, 0, 0, 0])
                for i in range(4):
                    g[i] -= last[1][i]
            g = grown.setdefault(model, [0, 0, 0, 0])
            for i in range(4):
                g[i] += t[i]
            last_id, last = mid, [model, t]
        for model, g in grown.items():
            add_tokens(state, model, Tokens.from_list(g))
        state["last_id"], state["last"] = last_id, last
        state["cur"] = cur.as_list()
        state["malformed"] = state.get("malformed", 0) + chunk.malformed
        return True
