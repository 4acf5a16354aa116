"""The six roles as groups with explicit permissions; keys that existed keep what they could do."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# Frozen here, as a migration must be: later changes to core.access.ROLES get their own.
ROLES = {
    "admin": [
        "audit_read",
        "backtests_write",
        "campaigns_launch",
        "campaigns_read",
        "campaigns_write",
        "consent_override",
        "contacts_erase",
        "contacts_read",
        "contacts_write",
        "decisions_read",
        "events_write",
        "keys_manage",
        "messages_read",
        "models_read",
        "pii_read",
        "predict",
        "records_read",
        "rules_approve",
        "rules_read",
        "rules_write",
    ],
    "analyst": [
        "campaigns_read",
        "decisions_read",
        "models_read",
        "predict",
        "records_read",
        "rules_read",
    ],
    "campaign manager": [
        "campaigns_launch",
        "campaigns_read",
        "campaigns_write",
        "contacts_read",
        "contacts_write",
        "messages_read",
    ],
    "compliance": [
        "audit_read",
        "campaigns_read",
        "consent_override",
        "contacts_erase",
        "contacts_read",
        "decisions_read",
        "messages_read",
        "pii_read",
        "records_read",
    ],
    "rule approver": ["decisions_read", "rules_approve", "rules_read"],
    "rule editor": [
        "backtests_write",
        "decisions_read",
        "models_read",
        "rules_read",
        "rules_write",
    ],
}
KEY_SCOPES_BEFORE = [
    "backtests:write",
    "campaigns:launch",
    "campaigns:read",
    "campaigns:write",
    "contacts:read",
    "contacts:write",
    "decisions:read",
    "events:write",
    "messages:read",
    "models:read",
    "pii:read",
    "predict",
    "records:read",
    "rules:read",
    "rules:write",
]


def roles_create(apps, schema_editor):
    # Permissions are normally made after all migrations; the groups need them now.
    core_config = apps.get_app_config("core")
    core_config.models_module = True
    create_permissions(core_config, apps=apps, verbosity=0)
    core_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, granted in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(
            Permission.objects.filter(
                content_type__app_label="core",
                codename__in=granted,
            )
        )
    # Before scopes every key could do everything: keep existing integrations working (the
    # operations guide says to narrow them), while every new key starts with none.
    ApiKey = apps.get_model("core", "ApiKey")
    ApiKey.objects.filter(scopes=[]).update(scopes=KEY_SCOPES_BEFORE)


def roles_remove(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_add_scopes_and_access_permissions"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(roles_create, roles_remove)]
