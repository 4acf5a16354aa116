"""A rules generation: one number that changes with every write to rules, versions or policies.

decisions.live_rules caches each event type's live versions and policy per process and reads
this number (one primary-key lookup) per event instead of loading them again; core.generations
says how the trigger keeps it.
"""

from django.db import migrations

from core.generations import generation_sql

GENERATION, GENERATION_REVERSE = generation_sql(
    name="decisions_rules_generation",
    tables=["decisions_rule", "decisions_ruleversion", "decisions_policy"],
)


class Migration(migrations.Migration):
    dependencies = [
        ("decisions", "0005_merge_review_and_velocity"),
    ]

    operations = [migrations.RunSQL(GENERATION, GENERATION_REVERSE)]
