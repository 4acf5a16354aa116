"""A rules generation: one number that changes with every write to rules, versions or policies.

decisions.live_rules caches each event type's live versions and policy per process and reads
this number (one primary-key lookup) per event instead of loading them again. A trigger, not the
services, moves it, so no write can forget to: the admin, a data migration, raw SQL and a
TRUNCATE all do. It fires before each statement, so it takes the generation row's lock before
the statement locks any rule row (two writers queue on it instead of deadlocking), and every
statement takes a fresh value of a sequence, so a transaction that changes rules twice moves it
twice, and a value is never given again, even by a rolled-back transaction.
"""

from django.db import migrations

GENERATION = """
CREATE SEQUENCE decisions_rules_generation_seq;
CREATE TABLE decisions_rules_generation (
    id smallint PRIMARY KEY CHECK (id = 1),
    value bigint NOT NULL
);
INSERT INTO decisions_rules_generation (id, value)
    VALUES (1, nextval('decisions_rules_generation_seq'));
CREATE FUNCTION decisions_rules_generation_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO decisions_rules_generation (id, value)
        VALUES (1, nextval('decisions_rules_generation_seq'))
        ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value;
    RETURN NULL;
END
$$;
CREATE TRIGGER decisions_rule_generation
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON decisions_rule
    FOR EACH STATEMENT EXECUTE FUNCTION decisions_rules_generation_bump();
CREATE TRIGGER decisions_ruleversion_generation
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON decisions_ruleversion
    FOR EACH STATEMENT EXECUTE FUNCTION decisions_rules_generation_bump();
CREATE TRIGGER decisions_policy_generation
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON decisions_policy
    FOR EACH STATEMENT EXECUTE FUNCTION decisions_rules_generation_bump();
"""

GENERATION_REVERSE = """
DROP TRIGGER IF EXISTS decisions_rule_generation ON decisions_rule;
DROP TRIGGER IF EXISTS decisions_ruleversion_generation ON decisions_ruleversion;
DROP TRIGGER IF EXISTS decisions_policy_generation ON decisions_policy;
DROP FUNCTION IF EXISTS decisions_rules_generation_bump();
DROP TABLE IF EXISTS decisions_rules_generation;
DROP SEQUENCE IF EXISTS decisions_rules_generation_seq;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("decisions", "0005_merge_review_and_velocity"),
    ]

    operations = [migrations.RunSQL(GENERATION, GENERATION_REVERSE)]
