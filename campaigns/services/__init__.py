"""Every write of the campaigns app, one module per concern; callers use `campaigns.services`.

- `contacts`: contacts, the consent ledger (and who may reverse an opt-out), CSV import;
- `erasure`: a contact's personal data erased, its counts and consent ledger kept;
- `lifecycle`: campaign drafts, the launch (COPY), pause, resume, cancel;
- `jobs`: preview, launch and import as background jobs with progress, one at a time;
- `retention`: the daily purge of old raw webhooks and message bodies;
- `transactional`: one message outside any campaign (what `decisions` calls);
- `dispatch`: claiming due messages and enqueueing their sends;
- `sending`: one send (checks, claim, rate tokens, provider call, retry);
- `receipts`: webhooks (delivery receipts, STOP/START/HELP) and reconciliation;
- `states`: the message state tables and the only two ways a message moves;
- `templates`: SMS templates that rule actions send, and their approval.
"""

from campaigns.services.contacts import (
    ImportReport,
    consent_change,
    contact_create,
    contact_update,
    contact_validate,
    contacts_import,
)
from campaigns.services.dispatch import messages_dispatch
from campaigns.services.erasure import Erasure, contact_erase
from campaigns.services.jobs import campaign_job_request, campaign_job_run, preview_runs_inline
from campaigns.services.lifecycle import (
    campaign_cancel,
    campaign_create,
    campaign_launch,
    campaign_pause,
    campaign_resume,
    campaign_update,
)
from campaigns.services.receipts import (
    WebhookResult,
    messages_reconcile,
    webhook_durability_set,
    webhook_process,
    webhook_reject,
    webhook_store,
)
from campaigns.services.retention import retention_purge
from campaigns.services.sending import (
    message_send,
    messages_send,
    retry_delay,
    status_callback_url,
)
from campaigns.services.templates import (
    sms_template_approve,
    sms_template_body_validate,
    sms_template_create,
    sms_template_for_sending,
    sms_template_get,
    sms_template_update,
)
from campaigns.services.transactional import transactional_message_send

__all__ = [
    "Erasure",
    "ImportReport",
    "WebhookResult",
    "campaign_cancel",
    "campaign_create",
    "campaign_job_request",
    "campaign_job_run",
    "campaign_launch",
    "campaign_pause",
    "campaign_resume",
    "campaign_update",
    "consent_change",
    "contact_create",
    "contact_erase",
    "contact_update",
    "contact_validate",
    "contacts_import",
    "message_send",
    "messages_dispatch",
    "messages_reconcile",
    "messages_send",
    "preview_runs_inline",
    "retention_purge",
    "retry_delay",
    "sms_template_approve",
    "sms_template_body_validate",
    "sms_template_create",
    "sms_template_for_sending",
    "sms_template_get",
    "sms_template_update",
    "status_callback_url",
    "transactional_message_send",
    "webhook_durability_set",
    "webhook_process",
    "webhook_reject",
    "webhook_store",
]
