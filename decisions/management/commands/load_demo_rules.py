"""Demo data for loan applications: a policy, two lists, a velocity aggregate, eight published
rules (one reads the velocity aggregate, one the similar cases), a shadow, events,
and four-eyes publishing: the loan_application policy requires approval, and one draft awaits it;
and the approved SMS template the rules' action sends.

Idempotent: what exists already (even if staff changed it since) is left alone.
"""

import random
from typing import Any

from django.contrib.auth.models import Group, Permission, User
from tqdm import tqdm

from campaigns import services as campaigns_services
from core.access import ROLES, codename
from core.management.demo import DemoCommand
from decisions import services
from decisions.models import Event, NamedList, Policy, Rule, RuleVersion, VelocityAggregate
from records import selectors as records_selectors

EVENT_TYPE = "loan_application"
RISK_MODEL = "credit-default"
DEMO_SCOPE = "demo"
LISTS = {
    "blocked_countries": ("Countries we may not lend to.", ["CU", "IR", "KP", "SY"]),
    "trusted_customers": ("Customers with a clean repayment history.", ["c-1001", "c-1002"]),
}
# Rule actions send only approved templates, by key: the demo's is approved by a demo campaign
# manager (a person without a usable password: nobody logs in as it).
TEMPLATES = {
    "loan-under-review": (
        "We are reviewing your loan application for {{ event.amount }} EUR "
        "and will reply within two days. Reply STOP to opt out."
    ),
}
DEMO_APPROVER = "demo-campaign-manager"
APPROVER_ROLE = "campaign manager"
RULES: list[dict[str, Any]] = [
    {
        "key": "blocked-country",
        "name": "Applicant in a blocked country",
        "condition": "event.country in lists.blocked_countries",
        "outcome": "decline",
        "priority": 10,
    },
    {
        "key": "underage",
        "name": "Applicant under 18",
        "condition": "event.age < 18",
        "outcome": "decline",
        "priority": 20,
    },
    {
        "key": "high-risk",
        "name": "High default risk (credit-default model)",
        "condition": 'has(risk.label) && risk.label == "high"',
        "outcome": "decline",
        "priority": 25,
    },
    {
        "key": "trusted-customer",
        "name": "Trusted customer",
        "condition": "event.customer_id in lists.trusted_customers",
        "outcome": "approve",
        "priority": 30,
    },
    {
        "key": "large-amount",
        "name": "Large loan",
        "condition": "event.amount > 50000",
        "outcome": "review",
        "priority": 40,
        "actions": [
            {
                "type": "sms",
                "template": "loan-under-review",
                "to": "event.phone",
            }
        ],
        "shadow": "event.amount > 30000",
    },
    {
        "key": "repeat-applicant",
        "name": "Third application of a customer in a day",
        "condition": "velocity.applications_24h >= 2",
        "outcome": "review",
        "priority": 45,
    },
    {
        "key": "like-declined-cases",
        "name": "Most similar earlier applicants were declined",
        "condition": "similar.count >= 5 && similar.declined_share >= 0.6",
        "outcome": "review",
        "priority": 48,
    },
    {
        "key": "loan-to-income",
        "name": "Loan above five yearly incomes",
        "condition": "has(event.income) && event.amount > 5 * event.income",
        "outcome": "review",
        "priority": 50,
    },
]

# What the velocity rule reads: the customer's earlier applications in the last 24 hours.
VELOCITY_NAME = "applications_24h"

# A draft that waits for a rule approver in the demo (the policy requires approval).
APPROVAL_DEMO = {
    "rule": "loan-to-income",
    "condition": "has(event.income) && event.amount > 4 * event.income",
    "note": "Demo: review loans above four yearly incomes instead of five.",
}


class Command(DemoCommand):
    help = "Load the demo loan_application policy, lists and rules (and some decided events)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--events", type=int, default=40, help="Demo events to register (default 40)."
        )

    def handle(self, *args: Any, events: int, **options: Any) -> None:
        created = not Policy.objects.filter(event_type=EVENT_TYPE).exists()
        if created:
            services.policy_save(
                event_type=EVENT_TYPE,
                strategy="first_match",
                default_outcome="approve",
                outcome_precedence=["decline", "review", "approve"],
            )
            self.stdout.write(f"Policy for {EVENT_TYPE} created.")
        for name, (description, values) in LISTS.items():
            if not NamedList.objects.filter(name=name).exists():
                services.named_list_save(name=name, description=description, values=values)
                self.stdout.write(f"List {name} created.")
        self._ensure_templates()
        if not VelocityAggregate.objects.filter(policy__event_type=EVENT_TYPE).exists():
            services.velocity_aggregate_save(
                event_type=EVENT_TYPE,
                name=VELOCITY_NAME,
                function="count",
                key_field="customer_id",
                window_seconds=24 * 3600,
            )
            self.stdout.write(f"velocity.{VELOCITY_NAME} declared.")
        for spec in RULES:
            self._ensure_rule(spec)
        if created:
            self._require_approval()
        self._register_events(events)

    def _require_approval(self) -> None:
        """Four eyes from now on: the demo rules above went live before it was switched on."""
        services.policy_save(
            event_type=EVENT_TYPE,
            strategy="first_match",
            default_outcome="approve",
            outcome_precedence=["decline", "review", "approve"],
            requires_approval=True,
        )
        rule = Rule.objects.get(key=APPROVAL_DEMO["rule"])
        draft = services.rule_version_create(
            rule=rule,
            condition=APPROVAL_DEMO["condition"],
            outcome="review",
            priority=rule.versions.order_by("-number").values_list("priority", flat=True)[0],
            change_note=APPROVAL_DEMO["note"],
        )
        services.rule_version_approval_request(version=draft, note=APPROVAL_DEMO["note"])
        self.stdout.write(
            f"{EVENT_TYPE} now needs approval to publish; {rule.key} v{draft.number} awaits it."
        )

    def _ensure_templates(self) -> None:
        approver, created = User.objects.get_or_create(username=DEMO_APPROVER)
        if created:
            approver.set_unusable_password()
            approver.save(update_fields=["password"])
        # The role's group comes from a data migration; made again if it is gone (a flushed DB).
        role, _ = Group.objects.get_or_create(name=APPROVER_ROLE)
        role.permissions.add(
            *Permission.objects.filter(
                content_type__app_label="core",
                codename__in=[codename(scope) for scope in ROLES[APPROVER_ROLE]],
            )
        )
        approver.groups.add(role)
        approver = User.objects.get(pk=approver.pk)  # permissions are cached per instance
        for key, body in TEMPLATES.items():
            template = campaigns_services.sms_template_get(key=key)
            if template is None:
                template = campaigns_services.sms_template_create(
                    key=key, body=body, description="Demo: a loan sent to review."
                )
            if not template.approved:
                campaigns_services.sms_template_approve(template=template, actor=approver)
                self.stdout.write(f"SMS template {key} approved.")

    def _ensure_rule(self, spec: dict[str, Any]) -> None:
        rule = Rule.objects.filter(key=spec["key"]).first()
        if rule is None:
            rule = services.rule_create(key=spec["key"], name=spec["name"], event_type=EVENT_TYPE)
        if rule.versions.exists():
            return
        versions = [(spec["condition"], "Demo rule.", services.rule_version_publish)]
        if spec.get("shadow"):
            note = "Demo: try a lower threshold on live traffic."
            versions.append((spec["shadow"], note, services.rule_version_shadow))
        for condition, note, put_live in versions:
            version = services.rule_version_create(
                rule=rule,
                condition=condition,
                outcome=spec["outcome"],
                priority=spec["priority"],
                actions=spec.get("actions"),
                change_note=note,
            )
            put_live(version=version)
        self.stdout.write(f"Rule {rule.key} published.")

    def _register_events(self, count: int) -> None:
        generator = random.Random(7)  # the same demo events on every machine
        existing = set(
            Event.objects.filter(client_scope=DEMO_SCOPE).values_list("idempotency_key", flat=True)
        )
        missing = [index for index in range(count) if f"demo-{index}" not in existing]
        countries = ["DE", "DE", "FR", "NL", "US", "KP", "IR"]
        payloads = {
            index: {
                "customer_id": f"c-{1000 + generator.randint(0, 30)}",
                "amount": generator.choice([2000, 8000, 15000, 35000, 60000, 120000]),
                "income": generator.choice([12000, 30000, 55000, 90000]),
                "age": generator.randint(16, 75),
                "country": generator.choice(countries),
                "phone": f"+491512{generator.randint(1_000_000, 9_999_999)}",
            }
            for index in range(count)
        }
        # Scored with the demo model when it is trained (make run trains it first).
        applicants = (
            records_selectors.demo_applicants()
            if records_selectors.scoring_available(model_id=RISK_MODEL)
            else []
        )
        for index in tqdm(missing, desc="demo events", file=self.stdout, disable=not missing):
            risk = (
                {"model_id": RISK_MODEL, "features": applicants[index % len(applicants)]}
                if applicants
                else None
            )
            services.event_register(
                event_type=EVENT_TYPE,
                payload=payloads[index],
                risk_request=risk,
                idempotency_key=f"demo-{index}",
                client_scope=DEMO_SCOPE,
                fingerprint="demo",
            )
        published = RuleVersion.objects.filter(
            rule__event_type=EVENT_TYPE, status=RuleVersion.Status.PUBLISHED
        ).count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo rules ready: {published} published rules, {len(missing)} new events."
            )
        )
