import django.db.models.deletion
from django.db import migrations, models


def fill_organization_ids(apps, schema_editor):
    """Old rows get the id of the organisation their slug names (outside their hash, version 1)."""
    AuditEvent = apps.get_model("registry", "AuditEvent")
    Organization = apps.get_model("registry", "Organization")
    for organization_id, slug in Organization.objects.values_list("pk", "slug"):
        AuditEvent.objects.filter(organization=slug, organization_ref__isnull=True).update(
            organization_ref=organization_id
        )


class Migration(migrations.Migration):

    dependencies = [
        ("registry", "0006_consent_integrity"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="organization_ref",
            field=models.ForeignKey(
                blank=True,
                db_column="organization_id",
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="registry.organization",
            ),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="hash_version",
            field=models.PositiveSmallIntegerField(default=1),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["organization_ref", "seq"], name="auditevent_org_seq"),
        ),
        migrations.RunPython(fill_organization_ids, migrations.RunPython.noop),
    ]
