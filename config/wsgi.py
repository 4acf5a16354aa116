import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Each gunicorn worker imports this module after its fork (we never use --preload): warm the
# production models there, in the background, so the first page is not held up by them.
from risk.warmup import production_models_warm_in_background  # noqa: E402

production_models_warm_in_background()
