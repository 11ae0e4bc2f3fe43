"""The periodic tracker work of a long-running process (the dispatcher, the app), one scheduler
for every tracker: ``poke()`` each tick; when the tracker's sync interval has passed since the
last sync (as recorded in the store, so a restart does not sync at once again) or a taken
item's task is done and its write-back is pending, one background thread does the pass.
Never blocks the caller; never two passes at once; after a failure it waits before retrying.

A tracker (planeai.services.trackers for Jira, planeai.services.plane_sync for Plane) says
what is configured and does the pass; this module decides when.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable

from planeai.errors import PlaneaiError

if TYPE_CHECKING:
    from planeai.config import Config
    from planeai.paths import Locations
    from planeai.store.repository import Store


class TrackerPoller:
    source = ""       # tracker_items.source
    thread_name = ""

    def __init__(self, store: "Store", config: "Config", locs: "Locations", *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.config, self.locs = store, config, locs
        self.clock = clock
        self._thread: threading.Thread | None = None
        self._last_sync: float | None = None
        self._retry_at = 0.0            # after a failure: wait before trying again
        self._stopping = False
        self.last_error: str | None = None

    # ------------------------------------------------------------------ the tracker's part
    def interval(self) -> float:
        """Seconds between syncs; 0 = no periodic sync."""
        raise NotImplementedError

    def scopes(self) -> list[str]:
        """The configured scopes (filters, projects); empty = not configured."""
        raise NotImplementedError

    def writeback_kinds(self) -> list[str]:
        """The write-back kinds in use (empty = none)."""
        raise NotImplementedError

    def run_pass(self, do_sync: bool) -> str | None:
        """One sync (or write-back only) pass; the first error, or None."""
        raise NotImplementedError

    def on_failure(self, error: str) -> None:
        """A pass that could not even start (not configured, no token)."""

    # ------------------------------------------------------------------ scheduling
    def _sync_due(self) -> bool:
        scopes, interval = self.scopes(), self.interval()
        if not scopes or interval <= 0:
            return False
        now = self.clock()
        if self._last_sync is None:
            states = {st.scope: st.last_sync for st in self.store.tracker_sync_states(self.source)}
            times = [states.get(s) for s in scopes]
            if all(times):
                try:
                    oldest = min(datetime.fromisoformat(t) for t in times)
                    age = (datetime.now(timezone.utc) - oldest).total_seconds()
                    self._last_sync = now - max(0.0, age)
                except ValueError:
                    pass
        return self._last_sync is None or now - self._last_sync >= interval

    def _writeback_due(self) -> bool:
        if not self.scopes():
            return False
        return any(self.store.pending_writebacks(self.source, k)
                   for k in self.writeback_kinds())

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def poke(self) -> bool:
        """Start a background pass if one is due; True when one started."""
        if self._stopping or self.busy() or self.clock() < self._retry_at:
            return False
        try:
            do_sync = self._sync_due()
            if not do_sync and not self._writeback_due():
                return False
        except (PlaneaiError, ValueError):
            return False
        if do_sync:
            self._last_sync = self.clock()
        self._thread = threading.Thread(target=self._run, args=(do_sync,),
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        return True

    def _run(self, do_sync: bool) -> None:
        try:
            self.last_error = self.run_pass(do_sync)
        except PlaneaiError as e:
            self.last_error = str(e)
            try:
                self.on_failure(self.last_error)
            except PlaneaiError:
                pass
        except Exception as e:  # noqa: BLE001 - a background pass must not kill its host
            self.last_error = f"{type(e).__name__}: {e}"
        if self.last_error:
            self._retry_at = self.clock() + max(30.0, min(self.interval(), 600))

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        """No new pass; the one under way finishes (up to ``timeout``), so a write-back is
        not cut between posting and recording."""
        self._stopping = True
        self.join(timeout)
