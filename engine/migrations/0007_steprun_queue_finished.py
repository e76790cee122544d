from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction; it does not block the workers' writes to
    # engine_steprun while it builds, however long the table's history is.
    atomic = False

    dependencies = [
        ('engine', '0006_channel_layer_group_key_index'),
    ]

    # The queue page counts each queue's steps that finished in the last minute (engine.core.queues.queue_stats);
    # without this index, the count read every step run ever made, on every refresh.
    operations = [
        AddIndexConcurrently(
            model_name='steprun',
            index=models.Index(condition=models.Q(('finished_at__isnull', False)), fields=['queue', 'finished_at'], name='steprun_queue_finished'),
        ),
    ]
