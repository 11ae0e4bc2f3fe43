"""Codex CLI's session rollouts: ``<CODEX_HOME>/sessions/YYYY/MM/DD/rollout-*.jsonl``.

``CODEX_HOME`` defaults to ``$HOME/.codex``; the date directories are the start's local date.
The first record is ``session_meta`` (``payload.cwd``, ``payload.timestamp``);
``turn_context`` records name the model (``payload.model``); ``event_msg`` records of
``payload.type`` ``token_count`` carry the running total ``payload.info.total_token_usage``
(``input_tokens`` including ``cached_input_tokens``, ``cache_write_input_tokens``,
``output_tokens`` including reasoning). Measured with 0.169.0 against a scripted endpoint.
Each total's growth is counted to the model of the turn it happened in.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from planeai.agents_usage.jsonl import Cursor, first_record, read_new
from planeai.agents_usage.records import Window, add_tokens, parse_ts
from planeai.agents_usage.usage import Tokens


def _tokens(u: dict) -> Tokens:
    def n(k: str) -> int:
        v = u.get(k)
        return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0

    cached, written = n("cached_input_tokens"), n("cache_write_input_tokens")
    # OpenAI's input count includes the cached part: bill that apart, at its own price
    return Tokens(max(0, n("input_tokens") - cached - written), n("output_tokens"), written,
                  cached)


def _want(line: bytes) -> bool:
    return b'"token_count"' in line or b'"turn_context"' in line


class CodexRollouts:
    name = "codex"

    def candidates(self, w: Window) -> list[str]:
        root = w.env.get("CODEX_HOME") or os.path.join(w.home(), ".codex")
        end = w.end or datetime.now(timezone.utc)
        # directories are named by local date: a day either side covers every time zone
        day, last = (w.start - timedelta(days=1)).date(), (end + timedelta(days=1)).date()
        out, start = [], w.start.timestamp() - 5
        while day <= last:
            d = os.path.join(root, "sessions", f"{day.year:04d}", f"{day.month:02d}",
                             f"{day.day:02d}")
            try:
                entries = os.scandir(d)
            except OSError:
                entries = None
            if entries is not None:
                with entries:
                    out += [e.path for e in entries if e.name.startswith("rollout-")
                            and e.name.endswith(".jsonl") and e.stat().st_mtime >= start]
            day += timedelta(days=1)
        return out

    def belongs(self, path: str, w: Window) -> bool | None:
        rec = first_record(path, lambda r: r.get("type") == "session_meta", max_lines=5)
        if rec is None:
            return None
        payload = rec.get("payload") or {}
        ts = parse_ts(payload.get("timestamp") or rec.get("timestamp"))
        return payload.get("cwd") in w.cwds() and ts is not None and w.holds(ts)

    def read(self, path: str, state: dict) -> bool:
        cur = Cursor.from_list(state.get("cur"))
        chunk = read_new(path, cur, _want)
        if chunk is None:
            return False
        if chunk.restarted:
            state.clear()
        model = state.get("model") or "unknown"
        prev = Tokens.from_list(state["total"]) if state.get("total") else Tokens()
        for rec in chunk.records:
            payload = rec.get("payload")
            if not isinstance(payload, dict):
                continue
            if rec.get("type") == "turn_context" and isinstance(payload.get("model"), str):
                model = payload["model"]
            elif payload.get("type") == "token_count":
                info = payload.get("info")
                total = info.get("total_token_usage") if isinstance(info, dict) else None
                if not isinstance(total, dict):
                    continue
                now = _tokens(total)
                grown = now - prev
                if min(grown.as_list()) >= 0 and grown.total:
                    add_tokens(state, model, grown)
                prev = now
        state["model"], state["total"] = model, prev.as_list()
        state["cur"] = cur.as_list()
        state["malformed"] = state.get("malformed", 0) + chunk.malformed
        return True
