"""Gunicorn settings Kyoka's web processes rely on; gunicorn reads ./gunicorn.conf.py by itself.

Each worker warms the check path before it takes its first request: it maps the near-match
index that the machine's workers share (the first one builds it, the others wait for it and
map it), and builds its filter of registered keys. A worker that cannot (the database is away)
starts anyway: both fall back to the database, which is slower, never wrong.
"""

import logging


def post_worker_init(worker):
    # Runs in the worker after it loaded the application (post-fork): the connection is its own.
    from django.db import DEFAULT_DB_ALIAS, connections

    from registry.selectors.key_filter import key_filter
    from registry.selectors.phash_index import phash_index

    if connections[DEFAULT_DB_ALIAS].vendor != "postgresql":
        return
    try:
        phash_index(DEFAULT_DB_ALIAS).warm()
        key_filter(DEFAULT_DB_ALIAS).warm()
    except Exception:
        logging.getLogger("kyoka.gunicorn").exception("Warming the check path failed; it warms on first use")
