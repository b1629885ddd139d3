"""Fixed SQL statements on PostgreSQL: bound on the server, prepared once per connection, pipelined.

The ORM binds parameters on the client (psycopg's ClientCursor): every statement arrives as new
text that PostgreSQL parses and plans again, and a thousand keys travel as a literal. The check
path runs the same few statements on every request, so it sends them as fixed text with real
parameters through a server-binding cursor: after KYOKA_DB_PREPARE_THRESHOLD runs on a
connection psycopg prepares them, and planning (about a millisecond for a lookup by 50 keys)
stops. Statements go through Django's cursor wrapper, so query logging, execute wrappers and
the test suite's query counting still see every one.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator

from django.db import connections
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.models import Model
from django.db.models.base import ModelState


def generic_plans_keep(sender, connection, **kwargs) -> None:
    """On a new PostgreSQL connection that prepares statements, keep one generic plan per statement,
    and compile none of them (JIT).

    `plan_cache_mode` touches prepared statements only, and only the fixed statements here are
    prepared (the ORM binds on the client). Left to itself PostgreSQL plans a prepared statement
    afresh whenever the generic plan's estimate looks worse than a custom one: the key filter's
    "rows above this id" looks like a third of each table to a generic plan, so it was planned on
    every check (0.4 ms of the server's time for an index scan of a few rows), as was every
    statement on its first five runs per connection. Those same pessimistic estimates can cross
    `jit_above_cost`, and compiling a plan costs ~100 ms: a short request's work never pays that
    back, so JIT is off on these connections. Connected with Django's connection_created.
    """
    prepares = connection.settings_dict.get("OPTIONS", {}).get("prepare_threshold") is not None
    if connection.vendor != "postgresql" or not prepares:
        return
    with connection.connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('plan_cache_mode', 'force_generic_plan', false), set_config('jit', 'off', false)"
        )


@contextlib.contextmanager
def lookups_by_index(using: str) -> Iterator[None]:
    """Inside a transaction on PostgreSQL: statements plan their key lookups as index scans,
    whatever the table statistics say (elsewhere, and outside a transaction, nothing changes).

    A bulk upload writes into tables whose statistics were taken when they were small (nothing
    refreshes them mid-upload, and autovacuum may be slow or off), and with the default
    `random_page_cost` a lookup of a thousand keys then looks cheaper as a sequential scan: at
    100,000 written rows that was 25-36 ms per chunk against 3 ms by index, and growing with the
    table. A lookup by keys never wants a sequential scan of the whole table, so the scan is off
    for the statements inside (a statement with no index left to use still scans). Set with
    `set_config(..., true)`: an error rolls it back with its savepoint, and a clean exit puts the
    earlier value back.
    """
    connection = connections[using]
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('enable_seqscan'), set_config('enable_seqscan', 'off', true)")
        (before, _), = cursor.fetchall()
    yield
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('enable_seqscan', %s, true)", [before])


def fixed_cursor(using: str):
    """A Django cursor wrapper around a server-binding psycopg cursor on `using` (PostgreSQL only)."""
    connection = connections[using]
    connection.ensure_connection()
    return connection._prepare_cursor(ServerBindingCursor(connection.connection))


Statement = tuple[str, str, list]  # (name, sql, params)


def fixed_rows(
    statements: list[Statement], using: str, *, meanwhile: Callable[[], list[Statement] | None] | None = None,
) -> dict[str, list[tuple]]:
    """Each (name, sql, params) statement's rows, all sent before any is read (psycopg's pipeline).

    `meanwhile`, when given, is called once, after the statements went out and before their rows
    are read: work that needs no database runs while the server works (it must not use this
    connection). The statements it returns, if any, go out after the first and are read with
    them. The rows are as psycopg returns them: no ORM converter is applied.
    """
    if not statements:
        later = meanwhile() if meanwhile is not None else None
        return fixed_rows(later, using) if later else {}
    connection = connections[using]
    cursors = {name: fixed_cursor(using) for name, _, _ in statements}
    try:
        if len(statements) == 1 and meanwhile is None:
            (name, sql, params), = statements
            cursors[name].execute(sql, params)
            return {name: cursors[name].fetchall()}
        with connection.connection.pipeline():
            for name, sql, params in statements:
                cursors[name].execute(sql, params)
            for name, sql, params in (meanwhile() if meanwhile is not None else None) or ():
                cursors[name] = fixed_cursor(using)
                cursors[name].execute(sql, params)
            return {name: cursor.fetchall() for name, cursor in cursors.items()}
    finally:
        for cursor in cursors.values():
            cursor.close()


def _fields(model: type[Model], attnames: Iterable[str] | None) -> list:
    fields = model._meta.concrete_fields
    if attnames is None:
        return list(fields)
    wanted = set(attnames)
    return [field for field in fields if field.attname in wanted]


def model_columns(model: type[Model], alias: str, attnames: Iterable[str] | None = None) -> str:
    """`model`'s concrete columns (all, or those named), in field order, qualified by `alias`:
    what `model_from_row` reads back."""
    return ", ".join(f"{alias}.{field.column}" for field in _fields(model, attnames))


def model_from_row(model: type[Model], values, using: str, attnames: Iterable[str] | None = None) -> Model:
    """An instance from the values of `model_columns(model, _, attnames)`, with each field's own
    conversion applied (JSON arrives as text).

    What `Model.from_db` makes, without calling `Model.__init__`: the fields not read are
    deferred (absent from the instance's __dict__, loaded on first access), and no pre_init or
    post_init signal is sent (Kyoka connects none). The check path makes a dozen such instances
    per request, and __init__ with its twenty keyword checks cost more than the statement's rows.
    """
    names, converters = _row_shape(model, tuple(attnames) if attnames is not None else None)
    connection = connections[using]
    instance = model.__new__(model)
    state = instance._state = ModelState()
    state.adding, state.db = False, using
    instance.__dict__.update(zip(names, [
        value if convert is None else convert(value, None, connection)
        for convert, value in zip(converters, values, strict=True)
    ], strict=True))
    return instance


@functools.cache
def _row_shape(model: type[Model], attnames: tuple[str, ...] | None) -> tuple[list[str], list]:
    fields = _fields(model, attnames)
    return [field.attname for field in fields], [getattr(field, "from_db_value", None) for field in fields]


def uuid_array(ids: Iterable) -> str:
    """A uuid[] parameter as one array literal (cast it: `%s::uuid[]`).

    psycopg dumps a list element by element in Python (~1.3 µs a uuid); the check path sends a
    few lists of ~50 ids per request, and one joined string costs a tenth of that.
    """
    return "{" + ",".join([value.hex for value in ids]) + "}"


def hex_array(values: Iterable[str]) -> str:
    """A text[] parameter of hexadecimal strings (digests), as one array literal (`%s::text[]`):
    hex needs no quoting inside an array literal."""
    return "{" + ",".join(values) + "}"
