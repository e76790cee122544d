"""The group ``credential_user``: it grants ``engine.use_credential``, naming stored credentials in workflow
nodes, which the designer role alone does not (see api/permissions.py). Nobody is in it at first: an operator
adds the designers who may use credentials (docs/security.md)."""

from django.db import migrations

GROUP = "credential_user"


def create_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    # The permission row is normally made after migrating (post_migrate); make it now to grant it.
    content_type, _ = ContentType.objects.get_or_create(app_label="engine", model="credential")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type, codename="use_credential",
        defaults={"name": "Can use credentials in workflow nodes"})
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(permission)


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_roles"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("engine", "0008_credential_allowed_hosts"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
