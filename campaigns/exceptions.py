"""Domain errors of the campaigns app."""

from core.errors import Conflict, DomainError, InvalidInput, NotFound


class InvalidPhone(InvalidInput):
    code = "invalid_phone"
    title = "Invalid phone number"

    def __init__(self, detail: str, *, field: str = "phone"):
        super().__init__(detail, errors={field: [detail]})


class InvalidCampaignConfig(InvalidInput):
    code = "invalid_campaign_config"
    title = "Invalid campaign configuration"


class TemplateRenderError(InvalidInput):
    code = "template_error"
    title = "The template cannot be rendered"


class ContactNotFound(NotFound):
    code = "contact_not_found"


class CampaignNotFound(NotFound):
    code = "campaign_not_found"


class CampaignStateConflict(Conflict):
    code = "campaign_state_conflict"
    title = "The campaign is not in a state that allows this"


class ReferenceConflict(Conflict):
    code = "reference_conflict"
    title = "This reference was already used for a different message"


class ConsentOverrideRequired(DomainError):
    code = "consent_override_required"
    status = 403
    title = "Only the contact or a compliance officer may reverse an opt-out"


class ContactErased(Conflict):
    code = "contact_erased"
    title = "The contact was erased"


class TemplateLimitExceeded(TemplateRenderError):
    code = "template_too_costly"
    title = "The template is over a size or work limit"

    def __init__(self, detail: str, *, errors: dict[str, list[str]] | None = None):
        super().__init__(detail, errors=errors or {"template": [detail]})


class ApprovalForbidden(DomainError):
    code = "approval_forbidden"
    status = 403
    title = "Only a campaign manager (a person with campaigns:launch) may approve"


class SmsTemplateNotFound(NotFound):
    code = "sms_template_not_found"


class SmsTemplateConflict(Conflict):
    code = "sms_template_conflict"
    title = "The SMS template cannot change this way"


class CampaignJobConflict(Conflict):
    code = "campaign_job_running"
    title = "Another job is already running for this campaign"
