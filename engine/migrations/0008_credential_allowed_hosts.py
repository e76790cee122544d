from django.db import migrations, models


class Migration(migrations.Migration):
    """Credentials get the list of hosts their secret may be sent to. Existing credentials get an empty list:
    a node cannot use them until a designer sets their hosts (PATCH /api/credentials/<name>/)."""

    dependencies = [
        ('engine', '0007_steprun_queue_finished'),
    ]

    operations = [
        migrations.AddField(
            model_name='credential',
            name='allowed_hosts',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AlterModelOptions(
            name='credential',
            options={'ordering': ['name'], 'permissions': [('use_credential', 'Can use credentials in workflow nodes')]},
        ),
    ]
