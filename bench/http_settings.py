"""Settings of the gunicorn that bench/http_load.py measures: the product's, plus a baseline URL."""

from config.settings import *  # noqa: F403 (the product's settings, unchanged)

ROOT_URLCONF = "bench.http_urls"
