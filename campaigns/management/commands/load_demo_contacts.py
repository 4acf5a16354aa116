"""Load a few hundred demo contacts (attributes, consent) and a draft campaign; idempotent."""

import random
from typing import Any

from django.core.management.base import CommandParser
from tqdm import tqdm

from campaigns import services
from campaigns.models import Campaign, Contact
from core.management.demo import DemoCommand

# Valid numbers in several countries and zones, so quiet hours differ across the audience.
PREFIXES = ["+1415555", "+1212555", "+1312555", "+44791112", "+6141255", "+551198765"]
FIRST_NAMES = ["Ada", "Grace", "Alan", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances"]
PLANS = ["free", "silver", "gold"]
CITIES = ["San Francisco", "New York", "Chicago", "London", "Sydney", "São Paulo"]
DEMO_CAMPAIGN = "Gold members: winter offer"


class Command(DemoCommand):
    help = "Load demo contacts with attributes and consent, and a draft campaign (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=300)

    def handle(self, *args: Any, count: int, **options: Any) -> None:
        rng = random.Random(42)  # the same contacts on every run
        created = 0
        for index in tqdm(range(count), desc="contacts", disable=count < 50):
            prefix = PREFIXES[index % len(PREFIXES)]
            phone = f"{prefix}{index:04d}"
            attributes = {
                "first_name": rng.choice(FIRST_NAMES),
                "plan": rng.choice(PLANS),
                "city": CITIES[index % len(CITIES)],
                "orders": rng.randint(0, 40),
            }
            consent = {"marketing": rng.random() < 0.85}
            if Contact.objects.filter(phone=phone).exists():
                continue
            services.contact_create(
                phone=phone, attributes=attributes, consent=consent, source="import"
            )
            created += 1
        if not Campaign.objects.filter(name=DEMO_CAMPAIGN).exists():
            services.campaign_create(
                name=DEMO_CAMPAIGN,
                config={
                    "segment": "contact.attributes.plan == 'gold' && contact.attributes.orders > 3",
                    "template": (
                        "Hi {{ contact.attributes.first_name }}, gold members get 20% off this "
                        "week. Reply STOP to opt out."
                    ),
                    "topic": "marketing",
                    "send_window": {"start": "09:00", "end": "20:00"},
                    "rate_per_second": 10,
                    "frequency_cap": {"max_messages": 3, "per_hours": 24},
                },
            )
        self.stdout.write(
            self.style.SUCCESS(f"Demo contacts: {created} created, {count - created} existed.")
        )
