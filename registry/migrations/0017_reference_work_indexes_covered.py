"""Registrations stop paying for three indexes the unique constraints already provide.

The work_id index of content files, work URLs and work identifiers duplicated the leading
column of each table's (work, …) unique index, which every lookup by work can use; each was one
more random write per reference (a bulk upload of 100,000 rows with a URL and an identifier
writes 200,000 references). Only the indexes go: the foreign keys stay as they are, so the
database operation is a plain DROP INDEX (Django's AlterField would drop and re-validate the
foreign keys too).
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "registry_contentfile": "registry_contentfile_work_id_5266f601",
    "registry_workidentifier": "registry_workidentifier_work_id_7be3b579",
    "registry_workurl": "registry_workurl_work_id_878a3a28",
}


class Migration(migrations.Migration):

    dependencies = [
        ('registry', '0016_phash_removal_counter'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='contentfile',
                    name='work',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name='files', to='registry.work'),
                ),
                migrations.AlterField(
                    model_name='workidentifier',
                    name='work',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name='identifiers', to='registry.work'),
                ),
                migrations.AlterField(
                    model_name='workurl',
                    name='work',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name='urls', to='registry.work'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{index}"',
                    reverse_sql=f'CREATE INDEX "{index}" ON "{table}" ("work_id")',
                )
                for table, index in INDEXES.items()
            ],
        ),
    ]
