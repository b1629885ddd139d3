"""Warming a web process's check path before it takes traffic (gunicorn's post_worker_init calls this)."""

from __future__ import annotations

import gc
import logging

from django.db import DEFAULT_DB_ALIAS, connections

logger = logging.getLogger(__name__)


def check_path_warm(using: str = DEFAULT_DB_ALIAS) -> None:
    """Map the near-match index the machine's workers share (building it if none has), build the key filter,
    and freeze what the process has allocated so far out of the garbage collector's scans.

    A worker that cannot (the database is away) starts anyway: both fall back to the database,
    which is slower, never wrong, and they warm on first use.
    """
    from registry.selectors.key_filter import key_filter
    from registry.selectors.phash_index import phash_index

    if connections[using].vendor == "postgresql":
        try:
            phash_index(using).warm()
            key_filter(using).warm()
        except Exception:
            logger.exception("Warming the check path failed; it warms on first use")
    # What the process holds at this point (Django, the URLconf, the filter) lives as long as the
    # process: moved out of the collector's reach, a full collection no longer walks it in the
    # middle of a check (a 1,000-item check allocates enough to set one off).
    gc.collect()
    gc.freeze()
