from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('engine', '0005_drop_indexes_covered_by_unique_constraints'),
        ('channels_postgres', '0004_notify_ensure_payload_not_too_big'),
    ]

    # channels-postgres looks its group memberships up by group key, and so does every statement that writes a
    # run's events with their channel-layer rows (engine.core.events.MESSAGES_INSERT), but its table has no index
    # on the key: each such statement read every membership (0.3 ms a statement with 3,000 of them).
    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS weft_groupchannel_group_key ON channels_postgres_groupchannel (group_key)",
            reverse_sql="DROP INDEX IF EXISTS weft_groupchannel_group_key",
        ),
    ]
