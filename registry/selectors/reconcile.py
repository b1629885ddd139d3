"""Comparing an in-process copy with its tables off the request path (the key filter, the near-match index)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import connections

logger = logging.getLogger(__name__)


def reconcile_in_background(
    *, using: str, name: str, holds: Callable[[], bool], on_difference: Callable[[], None],
) -> threading.Thread:
    """Run `holds` (does the table hold what the copy holds?) in a daemon thread with a connection of
    its own, closed after; call `on_difference` if it does not. A failure is logged and left for the
    next comparison: the copy keeps answering as it did."""

    def reconcile() -> None:
        try:
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
