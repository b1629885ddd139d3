"""A counter of statements that removed or changed near-match hash rows, kept by the database itself.

The shared near-match index (registry/selectors/phash_index.py) records the counter as it was
before it read the rows it holds. While the counter still says the same, no row the index holds
has been deleted or changed, so a check lists its similar works without confirming each hash row
(half the near-match statement's time); once it moves, every match is confirmed again until the
index is rebuilt. Triggers, not application code: cascades and raw SQL delete hash rows too. The
counter is a row, not a sequence, so its change becomes visible with the deletion's commit.
PostgreSQL only: on SQLite near-match search runs in SQL against the table and needs no counter.
"""

from django.db import migrations

FORWARD = [
    "CREATE TABLE registry_phash_removals (id integer PRIMARY KEY CHECK (id = 1), removals bigint NOT NULL)",
    "INSERT INTO registry_phash_removals VALUES (1, 0)",
    "ANALYZE registry_phash_removals",  # one row: without statistics a plan assumes two thousand
    # A statement that removed no row (a cascade from a work without hashes) leaves the count.
    "CREATE FUNCTION registry_phash_rows_removed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF EXISTS (SELECT 1 FROM gone) THEN UPDATE registry_phash_removals SET removals = removals + 1 WHERE id = 1; "
    "END IF; RETURN NULL; END $$",
    "CREATE FUNCTION registry_phash_removed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE registry_phash_removals SET removals = removals + 1 WHERE id = 1; RETURN NULL; END $$",
    "CREATE TRIGGER registry_phash_deleted AFTER DELETE ON registry_perceptualhash "
    "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION registry_phash_rows_removed()",
    "CREATE TRIGGER registry_phash_updated AFTER UPDATE ON registry_perceptualhash "
    "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION registry_phash_rows_removed()",
    "CREATE TRIGGER registry_phash_truncated AFTER TRUNCATE ON registry_perceptualhash "
    "FOR EACH STATEMENT EXECUTE FUNCTION registry_phash_removed()",
]
BACKWARD = [
    "DROP TRIGGER registry_phash_truncated ON registry_perceptualhash",
    "DROP TRIGGER registry_phash_updated ON registry_perceptualhash",
    "DROP TRIGGER registry_phash_deleted ON registry_perceptualhash",
    "DROP FUNCTION registry_phash_removed()",
    "DROP FUNCTION registry_phash_rows_removed()",
    "DROP TABLE registry_phash_removals",
]


def _run(statements, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in statements:
            schema_editor.execute(statement, params=None)


def forward(apps, schema_editor):
    _run(FORWARD, schema_editor)


def backward(apps, schema_editor):
    _run(BACKWARD, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0015_near_match_listing_indexes"),
    ]

    operations = [migrations.RunPython(forward, backward)]
