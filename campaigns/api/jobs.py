"""Background jobs (preview, launch, CSV import) under /api/v1/campaign-jobs/: poll one for
its progress and result. The requests that start them answer 202 with this representation
and a Location header pointing here."""

import json
from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from campaigns.models import CampaignJob
from core.access import Scope
from core.errors import NotFound
from core.permissions import ScopeRequired
from core.pii import may_read_pii, phone_mask, pii_read_audit, text_mask


class CampaignJobSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField(help_text="0..1 when the total is known.")

    class Meta:
        model = CampaignJob
        fields = [
            "id",
            "kind",
            "campaign",
            "status",
            "progress_done",
            "progress_total",
            "progress",
            "result",
            "error",
            "requested_by_label",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_progress(self, job: CampaignJob) -> float | None:
        if not job.progress_total:
            return None
        return round(min(job.progress_done / job.progress_total, 1.0), 4)


def _masked(result: dict[str, Any]) -> dict[str, Any]:
    """A preview's samples name recipients and show their messages: masked without pii:read."""
    masked = dict(result)
    if isinstance(result.get("samples"), list):
        masked["samples"] = [
            {
                **sample,
                "phone": phone_mask(sample.get("phone", "")),
                "body": text_mask(sample.get("body", "")),
            }
            for sample in result["samples"]
            if isinstance(sample, dict)
        ]
    if isinstance(result.get("template_errors"), list):
        masked["template_errors"] = [
            phone_mask(str(line).split(": ", 1)[0]) + ": …" for line in result["template_errors"]
        ]
    return masked


def job_representation(request: Request, job: CampaignJob) -> dict[str, Any]:
    """The job as the API shows it to this caller (preview samples masked without pii:read)."""
    data = dict(CampaignJobSerializer(job).data)
    data["url"] = reverse("campaign-job-detail", kwargs={"pk": job.pk}, request=request)
    if job.kind == CampaignJob.Kind.PREVIEW and data.get("result"):
        if may_read_pii(request.user):
            pii_read_audit(actor=request.user, target_type="campaign_job", target_ids=[job.pk])
        else:
            data["result"] = _masked(data["result"])
    return data


def job_accepted(request: Request, job: CampaignJob) -> tuple[int, dict[str, Any]]:
    """What a request that starts a job answers: 202 and the job (for `idempotent_response`)."""
    return 202, job_representation(request, job)


def job_response(request: Request, job: CampaignJob) -> HttpResponse:
    """202 Accepted with the job and a Location to poll (for requests without idempotency)."""
    status, data = job_accepted(request, job)
    return with_location(Response(data, status=status))


def with_location(response: HttpResponse) -> HttpResponse:
    """Point a 202 (first answer or idempotent replay) at the job to poll."""
    if response.status_code == 202:
        data = getattr(response, "data", None) or json.loads(response.content)
        response["Location"] = data["url"]
    return response


class CampaignJobViewSet(viewsets.GenericViewSet):
    """A background job's status, progress and result (campaigns:read)."""

    permission_classes = [ScopeRequired]
    required_scopes = {"retrieve": Scope.CAMPAIGNS_READ}
    serializer_class = CampaignJobSerializer
    queryset = CampaignJob.objects.none()

    @extend_schema(summary="A background job (preview, launch, import): status and progress")
    def retrieve(self, request: Request, pk: str) -> Response:
        job = CampaignJob.objects.filter(pk=int(pk) if pk.isdigit() else 0).first()
        if job is None:
            raise NotFound(f"No job {pk}.")
        return Response(job_representation(request, job))
