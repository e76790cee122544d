from django.db import migrations

# The queue's index is (key, rank), without id. With id as its last column, a lookup of broker rows by id (a
# claim dropping its step's message, recovery looking for a step's message) could read it instead of the
# primary key: the generic plans Weft's statements run with, made while the table's statistics said it was
# empty (as they do after a VACUUM of a queue that usually is), scanned every entry of the queue to find a
# few ids (3.6 ms of a fan-out's 4.3 ms claim of 32 siblings, with 1,000 messages queued). The dequeue reads
# the index in rank order and sorts only messages of equal rank by id (an incremental sort).
INDEX_WITHOUT_ID = """
DROP INDEX IF EXISTS weft_ormq_key_rank;
CREATE INDEX weft_ormq_key_rank ON django_q_ormq (key, rank);
"""
INDEX_WITH_ID = """
DROP INDEX IF EXISTS weft_ormq_key_rank;
CREATE INDEX weft_ormq_key_rank ON django_q_ormq (key, rank, id);
"""


class Migration(migrations.Migration):

    dependencies = [
        ('engine', '0023_run_ids_time_ordered'),
    ]

    operations = [
        migrations.RunSQL(INDEX_WITHOUT_ID, INDEX_WITH_ID),
    ]
