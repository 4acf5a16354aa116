"""Demo data for loan applications: a policy, two lists, six published rules, a shadow, events.

Idempotent: what exists already (even if staff changed it since) is left alone.
"""

import random
from typing import Any

from tqdm import tqdm

from core.management.demo import DemoCommand
from decisions import services
from decisions.models import Event, NamedList, Policy, Rule, RuleVersion
from records import selectors as records_selectors

EVENT_TYPE = "loan_application"
RISK_MODEL = "credit-default"
DEMO_SCOPE = "demo"
LISTS = {
    "blocked_countries": ("Countries we may not lend to.", ["CU", "IR", "KP", "SY"]),
    "trusted_customers": ("Customers with a clean repayment history.", ["c-1001", "c-1002"]),
}
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
                "template": (
                    "We are reviewing your loan application for {{ event.amount }} EUR "
                    "and will reply within two days. Reply STOP to opt out."
                ),
                "to": "event.phone",
            }
        ],
        "shadow": "event.amount > 30000",
    },
    {
        "key": "loan-to-income",
        "name": "Loan above five yearly incomes",
        "condition": "has(event.income) && event.amount > 5 * event.income",
        "outcome": "review",
        "priority": 50,
    },
]


class Command(DemoCommand):
    help = "Load the demo loan_application policy, lists and rules (and some decided events)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--events", type=int, default=40, help="Demo events to register (default 40)."
        )

    def handle(self, *args: Any, events: int, **options: Any) -> None:
        if not Policy.objects.filter(event_type=EVENT_TYPE).exists():
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
        for spec in RULES:
            self._ensure_rule(spec)
        self._register_events(events)

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
