"""Plane webhook deliveries: is this one really from Plane, and is it new?

Plane signs each delivery: ``X-Plane-Signature`` is the hex HMAC-SHA256 of the raw body with
the webhook secret; ``X-Plane-Delivery`` names the delivery, ``X-Plane-Event`` the event.

What is refused, before the body is even parsed (``WebhookRefused`` with the HTTP status):
- no webhook secret configured: nothing can be verified, so everything is refused (503);
- no signature, or one that does not match (compared in constant time): 401 / 403;
- no delivery id (400): without it a replay cannot be recognised;
Then, once the signature holds (``check_fresh``):
- a delivery id seen before (a replay, or a retry of one already taken): 409, never run again;
- a prompt (the delivery's ``agent_run_activity``, else its ``agent_run``) created longer
  ago than ``max_age`` seconds: 410. A recorded delivery sent again later under a new id is
  caught here; and Plane marks runs stale after 5 minutes without activity, so an old
  prompt is not worth starting an agent for anyway.
Delivery ids are remembered by the caller (the store), long enough to outlast ``max_age``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from planeai.errors import PlaneaiError

BODY_MAX = 1024 * 1024   # agent webhooks are small; a bigger body is not Plane's
EVENTS = ("agent_run_create", "agent_run_user_prompt")


class WebhookRefused(PlaneaiError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Delivery:
    event: str            # X-Plane-Event (or the payload's own event name)
    delivery_id: str
    payload: dict


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str:
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v.strip()
    return ""


def verify(headers: Mapping[str, str], body: bytes, secret: str | None) -> Delivery:
    """The delivery when its signature is right; WebhookRefused otherwise."""
    if not secret:
        raise WebhookRefused("no webhook secret configured (PLANE_WEBHOOK_SECRET): "
                             "deliveries cannot be verified", 503)
    if len(body) > BODY_MAX:
        raise WebhookRefused("body too large", 413)
    given = _header(headers, "X-Plane-Signature")
    if not given:
        raise WebhookRefused("missing X-Plane-Signature", 401)
    expected = sign(secret, body)
    if not hmac.compare_digest(given.lower().encode("ascii", "replace"),
                               expected.encode("ascii")):
        raise WebhookRefused("bad signature", 403)
    delivery = _header(headers, "X-Plane-Delivery")
    if not delivery or len(delivery) > 200:
        raise WebhookRefused("missing X-Plane-Delivery", 400)
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WebhookRefused("body is not JSON", 400) from None
    if not isinstance(payload, dict):
        raise WebhookRefused("body is not a JSON object", 400)
    event = _header(headers, "X-Plane-Event") or str(payload.get("event") or "")
    return Delivery(event, delivery, payload)


def _created(obj) -> str | None:
    return obj.get("created_at") if isinstance(obj, dict) else None


def created_at(payload: dict) -> datetime | None:
    """When what the delivery is about happened: its prompt activity (a reply an hour into
    a run is fresh), else its agent run, else the payload itself."""
    for raw in (_created(payload.get("agent_run_activity")), _created(payload.get("agent_run")),
                payload.get("created_at")):
        if isinstance(raw, str) and raw:
            try:
                t = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                continue
            return t if t.tzinfo else t.replace(tzinfo=timezone.utc)
    return None


def check_fresh(delivery: Delivery, *, seen_before: bool, max_age: float,
                now: datetime | None = None) -> None:
    """Refuse a replayed delivery id (409) and a run older than ``max_age`` s (410)."""
    if seen_before:
        raise WebhookRefused("delivery already received", 409)
    born = created_at(delivery.payload)
    now = now or datetime.now(timezone.utc)
    if born is None:
        raise WebhookRefused("the delivery has no created_at", 400)
    if (now - born).total_seconds() > max_age:
        raise WebhookRefused(f"stale: the prompt is over {max_age:g} s old", 410)


def run_id(payload: dict[str, Any]) -> str:
    run = payload.get("agent_run")
    rid = run.get("id") if isinstance(run, dict) else payload.get("agent_run_id")
    return rid if isinstance(rid, str) else ""
