"""Comparing an in-process copy with its tables off the request path (the key filter, the near-match index)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connections

logger = logging.getLogger(__name__)


def reconcile_spread() -> float:
    """The share of RECONCILE_SECONDS after which the next comparison is due: a random point of the
    period's second half, drawn anew for each. A machine's workers warm together, so with one fixed
    period they all counted the same million-row tables at the same moment: four workers, ~1.2 s of
    the server's CPU at once every 30 s on this benchmark's two cores."""
    return random.uniform(0.5, 1.0)


@dataclass
class ReconcileSchedule:
    """When a copy last began comparing itself with its tables, and when the next comparison is due."""

    started_at: float = 0.0  # time.monotonic(); 0: due at the first look
    spread: float = field(default_factory=reconcile_spread)

    def due(self, period: float) -> bool:
        return time.monotonic() - self.started_at > period * self.spread

    def restart(self) -> None:
        """A comparison begins (or the copy was just made from the tables): the next one is due later."""
        self.started_at, self.spread = time.monotonic(), reconcile_spread()


def reconcile_in_background(
    *, using: str, name: str, holds: Callable[[], bool], on_difference: Callable[[], None],
) -> threading.Thread:
    """Run `holds` (does the table hold what the copy holds?) in a daemon thread with a connection of
    its own, closed after; call `on_difference` if it does not. A failure is logged and left for the
    next comparison: the copy keeps answering as it did."""

    def reconcile() -> None:
        try:
            connection = connections[using]
            if connection.vendor == "postgresql":
                # One core for the counts, not every core for a shorter while: requests keep the
                # others (the connection is this thread's own, closed below with its settings).
                with connection.cursor() as cursor:
                    cursor.execute("SET max_parallel_workers_per_gather = 0")
            differs = not holds()
        except Exception:
            logger.exception("Reconciling %s with %s failed; trying again later", name, using)
            return
        finally:
            connections[using].close()
        if differs:
            on_difference()

    thread = threading.Thread(target=reconcile, name=name, daemon=True)
    thread.start()
    return thread
