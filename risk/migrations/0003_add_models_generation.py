"""A risk models generation: one number that changes with every write to models or versions.

risk.selectors caches the version a model scores with per process and reads this number (one
primary-key lookup) per prediction instead of loading the version again; core.generations says
how the trigger keeps it.
"""

from django.db import migrations

from core.generations import generation_sql

GENERATION, GENERATION_REVERSE = generation_sql(
    name="risk_models_generation", tables=["risk_riskmodel", "risk_modelversion"]
)


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0002_add_model_version_reference_distribution"),
    ]

    operations = [migrations.RunSQL(GENERATION, GENERATION_REVERSE)]
