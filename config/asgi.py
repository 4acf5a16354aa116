import os

import django
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)
# Tracing (when an OTLP endpoint is set) adds its middleware before the handler loads them.
from core.tracing import tracing_configure  # noqa: E402

tracing_configure()
application = ASGIHandler()
