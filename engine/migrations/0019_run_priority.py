from django.db import migrations, models

# The broker's rows get a rank: the time they were queued less their step's priority's worth of aging
# (engine.core.queues.aging_s). A queue is served in rank order, through the index. Rows written by django-q2
# itself, or by workers of the previous release during an upgrade, are ranked by their time alone (priority 0).
RANK_ADD = """
ALTER TABLE django_q_ormq ADD COLUMN rank double precision NOT NULL
    DEFAULT extract(epoch FROM statement_timestamp());
CREATE INDEX weft_ormq_key_rank ON django_q_ormq (key, rank, id);
"""
RANK_DROP = """
DROP INDEX IF EXISTS weft_ormq_key_rank;
ALTER TABLE django_q_ormq DROP COLUMN IF EXISTS rank;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('engine', '0018_run_durability'),
        ('django_q', '0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more'),
    ]

    operations = [
        migrations.AddField(
            model_name='run',
            name='priority',
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.RunSQL(RANK_ADD, RANK_DROP),
    ]
