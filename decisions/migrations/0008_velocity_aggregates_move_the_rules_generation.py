"""Velocity aggregates join the rules generation: decisions.live_rules caches an event type's
aggregates with its rules, so every write to them must move the number too."""

from django.db import migrations

from core.generations import generation_triggers_sql

TRIGGERS, TRIGGERS_REVERSE = generation_triggers_sql(
    name="decisions_rules_generation", tables=["decisions_velocityaggregate"]
)


class Migration(migrations.Migration):
    dependencies = [
        ("decisions", "0007_drop_redundant_matched_version_index"),
    ]

    operations = [migrations.RunSQL(TRIGGERS, TRIGGERS_REVERSE)]
