"""A collation that sorts digits by their value ("sheet 2" before "sheet 10"), for catalog listings.

PostgreSQL only (ICU); elsewhere the catalog sorts by plain title.
"""

from django.db import migrations

NAME = "kyoka_natural"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE COLLATION IF NOT EXISTS {NAME} (provider = icu, locale = 'und-u-kn-true')")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP COLLATION IF EXISTS {NAME}")


class Migration(migrations.Migration):
    dependencies = [("registry", "0009_message_codes")]
    operations = [migrations.RunPython(create, drop)]
