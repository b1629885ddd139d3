"""Reading a check's decision from a PostgreSQL read replica, never an answer older than the check.

With `DATABASE_REPLICA_URL` set, settings add a `replica` alias and this router. Only the
decision's reads are sent there, and only inside `decision_reads()` (the decision's load step):
every write, and every read outside that block (authentication, the check's own records,
services reading before they write), stays on the primary.

Read-your-writes, and more: a check must see everything committed before it began — a
registration a second ago (or the check would say `unregistered`), and above all a revocation,
a withdrawal or a freezing dispute (or it could say `permitted` where the owner has already
taken permission back). So before the decision reads from the replica, `decision_reads` takes
the primary's current WAL position and waits, at most REPLICA_WAIT_SECONDS, until the replica has
replayed up to it; a replica further behind is not used for that check, which reads from the
primary instead. Replica lag therefore never changes an answer: it only moves load back to the
primary while the replica is behind (see the README, "Read replicas").

The key filter and the near-match index keep themselves fresh from the primary (their catch-up
queries name the primary explicitly), so they never lag either.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import DEFAULT_DB_ALIAS, connections, router

REPLICA = "replica"
REPLICA_WAIT_SECONDS = 0.02
_POLL_SECONDS = 0.002

# What the replica has replayed: a standby reports its replay position; a server that is not in
# recovery (a mirror of the primary, as in tests) is as current as its own WAL.
REPLAYED_SQL = (
    "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() - '0/0' "
    "ELSE pg_current_wal_lsn() - '0/0' END"
)

_reads_on: ContextVar[str | None] = ContextVar("kyoka_decision_reads_on", default=None)


class ReplicaRouter:
    """Sends reads to the replica inside `decision_reads()` when it is caught up; everything else to the primary."""

    def db_for_read(self, model, **hints) -> str | None:
        return _reads_on.get() or DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        # The replica holds the same rows as the primary: objects read from either may relate.
        return True

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints) -> bool | None:
        return db != REPLICA


def replica_configured() -> bool:
    return REPLICA in connections.settings and any(isinstance(r, ReplicaRouter) for r in router.routers)


@contextmanager
def decision_reads() -> Iterator[str]:
    """Within this block, reads go to the replica if it has replayed everything committed so far.

    Yields the alias the reads use. Without a replica configured it changes nothing.
    """
    alias = _caught_up_alias() if replica_configured() else DEFAULT_DB_ALIAS
    token = _reads_on.set(alias)
    try:
        yield alias
    finally:
        _reads_on.reset(token)


def _caught_up_alias() -> str:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn() - '0/0'")
        (wanted,) = cursor.fetchone()
    deadline = time.monotonic() + REPLICA_WAIT_SECONDS
    with connections[REPLICA].cursor() as cursor:
        while True:
            cursor.execute(REPLAYED_SQL)
            (replayed,) = cursor.fetchone()
            if replayed is not None and replayed >= wanted:
                return REPLICA
            if time.monotonic() >= deadline:
                return DEFAULT_DB_ALIAS
            time.sleep(_POLL_SECONDS)
