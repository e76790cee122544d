-- name: allowed_table_drop
-- Drops the table of allowed transitions, so that installing the guard again starts from engine/states.py.
DROP TABLE IF EXISTS test_allowed_transition

-- name: allowed_table_create
-- One row per status change engine/states.py allows, by table; the trigger function reads it.
CREATE TABLE test_allowed_transition (
    table_name text NOT NULL,
    source text NOT NULL,
    target text NOT NULL,
    PRIMARY KEY (table_name, source, target)
)

-- name: allowed_insert
-- Adds one table's allowed (source, target) pairs, given as two arrays of equal length.
INSERT INTO test_allowed_transition (table_name, source, target)
SELECT %(table_name)s, pair.source, pair.target
FROM unnest(%(sources)s::text[], %(targets)s::text[]) AS pair (source, target)

-- name: check_function
-- Refuses a row's status change unless its (table, old status, new status) is an allowed transition, or
-- the transaction set weft_test.transitions_unchecked (a test putting a row back to replay a race).
CREATE OR REPLACE FUNCTION test_transition_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('weft_test.transitions_unchecked', true) = 'on' THEN
        RETURN NEW;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM test_allowed_transition
                   WHERE table_name = TG_TABLE_NAME AND source = OLD.status AND target = NEW.status) THEN
        RAISE EXCEPTION USING MESSAGE = 'transition not in engine/states.py: ' || TG_TABLE_NAME || ' '
            || OLD.id::text || ' ' || OLD.status || ' -> ' || NEW.status || ' (database ' || current_database() || ')';
    END IF;
    RETURN NEW;
END
$$

-- name: unchecked_set
-- Turns the check off ('on') or on again ('off') until the end of the current transaction.
SELECT set_config('weft_test.transitions_unchecked', %(unchecked)s, true)

-- name: run_trigger
-- Checks every status change of a run; an UPDATE that leaves the status as it was is no transition.
CREATE OR REPLACE TRIGGER test_run_transition_check
BEFORE UPDATE OF status ON engine_run
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION test_transition_check()

-- name: step_trigger
-- Checks every status change of a step run; an UPDATE that leaves the status as it was is no transition.
CREATE OR REPLACE TRIGGER test_step_transition_check
BEFORE UPDATE OF status ON engine_steprun
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION test_transition_check()
