"""Which hosts answer: a host that stops answering is marked down (an event, a row of the
store's kv table every process reads), its sessions shown as unreachable rather than exited,
and the dispatcher places no work there until it answers again (probed every PROBE_EVERY).

Only whoever finds out writes: the dispatcher (a failed start, a reconcile that could not ask
it, a probe), the CLI when a command meets it down. A mark is never a verdict on a session:
reconcile judges nothing of a host it cannot ask.
"""

from __future__ import annotations

import json
import time

from planeai.core import events as ev
from planeai.store.repository import Store

KV_KEY = "hosts.down"
PROBE_EVERY = 15.0  # seconds between probes of a host that is down


def down_hosts(store: Store) -> dict[str, dict]:
    """name -> {"since": epoch seconds, "reason": one line} of every host marked down."""
    try:
        data = json.loads(store.kv_get(KV_KEY, "{}") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def is_down(store: Store, name: str) -> bool:
    return name in down_hosts(store)


def mark_down(store: Store, name: str, reason: str) -> bool:
    """Mark ``name`` down (True when it was up: the event is written once)."""
    with store.write():
        data = down_hosts(store)
        if name in data:
            return False
        data[name] = {"since": time.time(), "reason": reason}
        store.kv_set(KV_KEY, json.dumps(data, sort_keys=True))
        store.append_event(ev.HOST_DOWN, data={"host": name, "reason": reason})
    return True


def mark_up(store: Store, name: str) -> bool:
    """``name`` answers again (True when it was down)."""
    with store.write():
        data = down_hosts(store)
        if name not in data:
            return False
        since = data.pop(name).get("since")
        store.kv_set(KV_KEY, json.dumps(data, sort_keys=True))
        store.append_event(ev.HOST_UP, data={
            "host": name, "down_for": round(time.time() - since, 1) if since else None})
    return True
