"""HTMX pages that write a draft: create and edit (through the services the API and admin
call), with the live segment count and the live rendered message as the fields change.

All need `campaigns:write`. The live preview renders for a real recipient only to a reader
of personal data (`pii:read`, audited); anyone else sees it for an example contact.
"""

from typing import Any

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from campaigns import page_selectors, selectors, services
from campaigns.config import config_parse
from campaigns.forms import CampaignDraftForm, live_config
from campaigns.models import Campaign
from core.access import Scope
from core.errors import DomainError
from core.pages import HtmxHttpRequest, page_view, render_page
from core.permissions import page_requires
from core.pii import may_read_pii, pii_read_audit

FORM_TEMPLATE = "campaigns/form.html"


def _saved(request: HtmxHttpRequest, campaign: Campaign) -> HttpResponse:
    """After a save: the campaign's page (htmx follows a client redirect, a form a 303)."""
    url = reverse("campaigns:detail", args=[campaign.pk])
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url, permanent=False)


def _form_page(
    request: HtmxHttpRequest, form: CampaignDraftForm, campaign: Campaign | None, status: int
) -> HttpResponse:
    context = {"nav": "campaigns", "form": form, "campaign": campaign}
    return render_page(request, FORM_TEMPLATE, context, partial="form", status=status)


@page_requires(Scope.CAMPAIGNS_WRITE)
@page_view("GET", "POST")
def campaign_create_page(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _form_page(request, CampaignDraftForm(), None, 200)
    form = CampaignDraftForm(request.POST)
    if form.is_valid():
        try:
            campaign = services.campaign_create(
                name=form.cleaned_data["name"], config=form.config(), actor=request.user
            )
            return _saved(request, campaign)
        except DomainError as error:
            form.add_domain_error(error)
    return _form_page(request, form, None, 400)


@page_requires(Scope.CAMPAIGNS_WRITE)
@page_view("GET", "POST")
def campaign_edit_page(request: HtmxHttpRequest, campaign_id: int) -> HttpResponse:
    """A draft's form; a launched campaign answers the service's refusal inline."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    if request.method == "GET":
        return _form_page(request, CampaignDraftForm.for_campaign(campaign), campaign, 200)
    form = CampaignDraftForm(request.POST)
    if form.is_valid():
        try:
            campaign = services.campaign_update(
                campaign=campaign,
                name=form.cleaned_data["name"],
                config=form.config(),
                actor=request.user,
            )
            return _saved(request, campaign)
        except DomainError as error:
            form.add_domain_error(error)
    return _form_page(request, form, campaign, 400)


def _field_errors(config: dict[str, Any], key: str) -> list[str]:
    """What the config parser says about one key of the config typed so far."""
    try:
        config_parse(config)
    except DomainError as error:
        return list(error.errors.get(key, []))
    return []


@page_requires(Scope.CAMPAIGNS_WRITE)
@page_view("POST")
def campaign_segment_count_partial(request: HtmxHttpRequest) -> HttpResponse:
    """How many contacts the segment typed so far matches."""
    config = live_config(request.POST)
    context: dict[str, Any] = {"errors": _field_errors(config, "config.segment")}
    if not context["errors"]:
        context["count"] = page_selectors.segment_count(segment=config["segment"])
    return render(request, f"{FORM_TEMPLATE}#segment_count", context)


@page_requires(Scope.CAMPAIGNS_WRITE)
@page_view("POST")
def campaign_message_preview_partial(request: HtmxHttpRequest) -> HttpResponse:
    """The template typed so far, rendered, with its length, encoding and SMS segments."""
    config = live_config(request.POST)
    context: dict[str, Any] = {"errors": _field_errors(config, "config.template")}
    if not context["errors"]:
        real = may_read_pii(request.user)
        try:
            shown = page_selectors.message_preview(
                template=config["template"], segment=config["segment"], real_contact=real
            )
        except DomainError as error:
            context["errors"] = [error.detail]
        else:
            if shown.contact_id is not None:
                pii_read_audit(
                    actor=request.user, target_type="contact", target_ids=[shown.contact_id]
                )
            context["preview"] = shown
    return render(request, f"{FORM_TEMPLATE}#message_preview", context)
