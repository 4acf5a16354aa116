"""HTMX pages of contacts: search, a contact (subscriptions, consent timeline, messages with
their transitions) and the CSV import as a background job with progress and its report.

Reading needs `contacts:read`, importing `contacts:write`, the messages `messages:read`;
numbers and bodies show masked without `pii:read` (and an unmasked read is audited).
"""

from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpResponse
from django.shortcuts import render

from campaigns import selectors, services
from campaigns.models import CampaignJob
from campaigns.pii import body_shown, numbers_shown, phone_shown
from core.access import Scope
from core.errors import DomainError, InvalidInput
from core.pages import HtmxHttpRequest, page_view, paginate, render_page
from core.permissions import page_requires, request_may
from core.pii import may_read_pii, pii_read_audit

IMPORT_TEMPLATE = "campaigns/contacts/import.html"


@page_requires(Scope.CONTACTS_READ)
@page_view("GET")
def contact_list_page(request: HtmxHttpRequest) -> HttpResponse:
    unmasked = may_read_pii(request.user)
    query = request.GET.get("q", "")[:200]
    contacts = selectors.contact_search(query=query, exact_number_only=not unmasked)
    context: dict[str, Any] = {"nav": "contacts", "q": query, **paginate(request, contacts)}
    context["rows"] = [
        {"contact": contact, "phone": phone_shown(contact.phone, mask=not unmasked)}
        for contact in context["page"]
    ]
    if unmasked:
        ids = [row["contact"].pk for row in context["rows"]]
        pii_read_audit(actor=request.user, target_type="contact", target_ids=ids)
    return render_page(request, "campaigns/contacts/list.html", context, partial="results")


@page_requires(Scope.CONTACTS_READ)
@page_view("GET")
def contact_detail_page(request: HtmxHttpRequest, contact_id: int) -> HttpResponse:
    unmasked = may_read_pii(request.user)
    shown = selectors.contact_page(
        contact_id=contact_id, with_messages=request_may(request, Scope.MESSAGES_READ)
    )
    if unmasked:
        pii_read_audit(actor=request.user, target_type="contact", target_ids=[contact_id])
    context = {
        "nav": "contacts",
        "contact": shown.contact,
        "phone": phone_shown(shown.contact.phone, mask=not unmasked),
        "messages_shown": shown.messages is not None,
        "contact_messages": [
            {
                "message": message,
                "body": body_shown(message.body, mask=not unmasked),
                "error": numbers_shown(message.error_message, mask=not unmasked),
            }
            for message in shown.messages or []
        ],
    }
    return render_page(request, "campaigns/contacts/detail.html", context)


def _uploaded_text(upload: UploadedFile | None) -> str:
    """The CSV's text; a missing, oversized or non-UTF-8 file is an error naming the field."""
    if upload is None:
        raise InvalidInput("Choose a CSV file to import.", errors={"file": ["Required."]})
    if upload.size and upload.size > settings.API_UPLOAD_MAX_BYTES:
        limit = settings.API_UPLOAD_MAX_BYTES // (1024 * 1024)
        raise InvalidInput("The file is too large.", errors={"file": [f"At most {limit} MB."]})
    try:
        return upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("The file is not UTF-8 text.", errors={"file": ["Not UTF-8."]}) from None


def _job_context(request: HtmxHttpRequest, job: CampaignJob) -> dict[str, Any]:
    mask = not may_read_pii(request.user)
    rejected = [
        {"line": row.get("line"), "errors": [numbers_shown(e, mask=mask) for e in row["errors"]]}
        for row in (job.result or {}).get("rejected", [])
    ]
    percent = (
        round(100 * min(job.progress_done / job.progress_total, 1.0)) if job.progress_total else 0
    )
    return {"job": job, "rejected": rejected, "percent": percent}


@page_requires(Scope.CONTACTS_WRITE)
@page_view("GET", "POST")
def contact_import_page(request: HtmxHttpRequest) -> HttpResponse:
    """The upload form; a posted file becomes an import job, whose progress the page polls."""
    context: dict[str, Any] = {"nav": "contacts", "max_rows": settings.CAMPAIGNS_IMPORT_MAX_ROWS}
    status = 200
    if request.method == "POST":
        try:
            text = _uploaded_text(request.FILES.get("file"))
            job = services.campaign_job_request(kind="import", payload=text, actor=request.user)
            context.update(_job_context(request, job))
        except DomainError as error:
            context["error"], status = error, error.status
    return render_page(request, IMPORT_TEMPLATE, context, partial="job", status=status)


@page_requires(Scope.CONTACTS_WRITE)
@page_view("GET")
def contact_import_job_partial(request: HtmxHttpRequest, job_id: int) -> HttpResponse:
    job = selectors.campaign_job_get(job_id=job_id, kind=CampaignJob.Kind.IMPORT)
    return render(request, f"{IMPORT_TEMPLATE}#job", _job_context(request, job))
