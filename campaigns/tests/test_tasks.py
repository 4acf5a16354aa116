"""The Celery tasks, run in-process: each re-reads its row and does nothing when it is gone.

The real worker runs them in tests/test_campaigns_sending.py; here they are called directly,
as a redelivered task or an idle beat tick would call them.
"""

import pytest

from campaigns.models import Message
from campaigns.tasks import (
    campaign_job_run_task,
    message_send_task,
    messages_dispatch_task,
    messages_reconcile_task,
)

pytestmark = pytest.mark.django_db


def test_a_send_for_a_message_that_is_gone_is_skipped():
    assert message_send_task(message_id=123456) == "skipped"

    assert not Message.objects.exists()


def test_a_job_that_is_gone_is_skipped():
    assert campaign_job_run_task(job_id=123456) == "skipped"


def test_an_idle_beat_tick_dispatches_and_reconciles_nothing():
    assert messages_dispatch_task() == 0
    assert set(messages_reconcile_task().values()) <= {0}
    assert not Message.objects.exists()
