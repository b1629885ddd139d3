from django.db import migrations


def create_chain_head(apps, schema_editor):
    apps.get_model("registry", "AuditChainHead").objects.get_or_create(pk=1, defaults={"seq": 0, "hash": "0" * 64})


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]

    operations = [migrations.RunPython(create_chain_head, migrations.RunPython.noop)]
