"""The group ``event_sender``: its users may send events (``POST /api/events/``) and nothing else. A script
that sends events gets a user in this group and an API token (docs/triggers.md)."""

from django.db import migrations

GROUP = "event_sender"


def create_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name=GROUP)


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [("api", "0002_credential_user")]

    operations = [migrations.RunPython(create_group, remove_group)]
