from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # CREATE and DROP INDEX CONCURRENTLY cannot run inside a transaction; neither blocks the workers' writes to
    # engine_run while it runs, however many runs the table holds.
    atomic = False

    dependencies = [
        ('engine', '0021_run_tally'),
    ]

    # run_finished with the runs' status in it: the run tally (engine.observability.run_tally) counts the finished
    # runs per status from the index alone instead of reading every run row.
    operations = [
        AddIndexConcurrently(
            model_name='run',
            index=models.Index(condition=models.Q(('finished_at__isnull', False)), fields=['finished_at'],
                               include=('status',), name='run_finished_status'),
        ),
        RemoveIndexConcurrently(
            model_name='run',
            name='run_finished',
        ),
    ]
