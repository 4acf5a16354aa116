import os

import django
from django.core.handlers.wsgi import WSGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)
# Tracing (when an OTLP endpoint is set) adds its middleware before the handler loads them.
from core.tracing import tracing_configure  # noqa: E402

tracing_configure()
application = WSGIHandler()

# Each gunicorn worker imports this module after its fork (we never use --preload): warm the
# production models there, in the background, so the first page is not held up by them.
from risk.warmup import production_models_warm_in_background  # noqa: E402

production_models_warm_in_background()
