"""Heavy work out of the request: campaign preview, launch and CSV import as Celery jobs.

A request creates a `CampaignJob` (queued) and answers 202 at once; the job runs on the
`heavy` queue (CAMPAIGNS_HEAVY_QUEUE, its own worker in run_stack) under a soft time limit,
and writes its progress through a connection of its own, so a page or client polling the job
sees it move while the work's own transaction is still open. One job at a time per campaign
(and one import at a time): a second request is a 409, decided by a partial unique index.
A job abandoned by a dead worker stops blocking after its lease (time limit + a minute).
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import structlog
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns import selectors
from campaigns.config import config_parse
from campaigns.enqueue import CAMPAIGN_JOB_RUN, task_enqueue
from campaigns.exceptions import CampaignJobConflict, CampaignStateConflict
from campaigns.models import Campaign, CampaignJob, Contact
from campaigns.services.contacts import contacts_import
from campaigns.services.lifecycle import campaign_launch
from core.audit import Actor, actor_label_for, actor_user_for, audit_record
from core.errors import DomainError

logger = structlog.get_logger(__name__)
Kind = CampaignJob.Kind
Status = CampaignJob.Status
# A progress write at most this often (seconds): a 100,000-contact launch writes a handful.
PROGRESS_INTERVAL = 0.5
ProgressReport = Callable[[int], None]


def preview_runs_inline() -> bool:
    """A preview over at most CAMPAIGNS_PREVIEW_INLINE_MAX_CONTACTS contacts answers at once;
    a larger one is a background job (a read, asked by the API before choosing)."""
    return Contact.objects.count() <= settings.CAMPAIGNS_PREVIEW_INLINE_MAX_CONTACTS


def _lease() -> timedelta:
    return timedelta(seconds=settings.CAMPAIGNS_HEAVY_SOFT_TIME_LIMIT_SECONDS + 60)


def _abandoned_release(*, campaign: Campaign | None, kind: str) -> None:
    """Fail the active jobs older than the lease: their worker died, they block nothing more."""
    stale = timezone.now() - _lease()
    scope = Q(campaign=campaign) if campaign is not None else Q(kind=kind)
    CampaignJob.objects.filter(
        scope,
        Q(status=Status.RUNNING, started_at__lt=stale)
        | Q(status=Status.QUEUED, created_at__lt=stale),
    ).update(
        status=Status.FAILED,
        finished_at=timezone.now(),
        payload="",
        error={"code": "abandoned", "detail": "No worker finished this job in time."},
    )


@transaction.atomic
def campaign_job_request(
    *, kind: str, campaign: Campaign | None = None, payload: str = "", actor: Actor = None
) -> CampaignJob:
    """Queue a preview, launch or import; the worker runs it once this transaction commits.

    What can be refused at once is refused here (a launch of a campaign that is not a draft,
    an invalid config), so a 202 means the work was accepted, not merely received.
    """
    if kind in (Kind.PREVIEW, Kind.LAUNCH):
        assert campaign is not None
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if kind == Kind.LAUNCH and campaign.status != Campaign.Status.DRAFT:
            raise CampaignStateConflict(
                f"Only a draft can be launched; this one is {campaign.status}."
            )
        config_parse(campaign.config)
    _abandoned_release(campaign=campaign, kind=kind)
    job = CampaignJob(
        kind=kind,
        campaign=campaign,
        payload=payload,
        requested_by=actor_user_for(actor),
        requested_by_label=actor_label_for(actor),
    )
    try:
        with transaction.atomic():
            job.save()
    except IntegrityError:
        running = CampaignJob.objects.filter(
            Q(campaign=campaign) if campaign is not None else Q(kind=kind),
            status__in=[Status.QUEUED, Status.RUNNING],
        ).first()
        what = f"job {running.pk} ({running.kind})" if running else "another job"
        raise CampaignJobConflict(
            f"{what.capitalize()} is still running here; wait for it to finish.",
            job=running.pk if running else None,
        ) from None
    if kind != Kind.PREVIEW:  # a preview writes nothing; a launch and an import do
        audit_record(
            actor=actor,
            action=f"campaign_job.{kind}",
            target_type="campaign" if campaign is not None else "contact",
            target_id=campaign.pk if campaign is not None else "import",
            after={"job": job.pk, "status": job.status},
        )
    queue = settings.CAMPAIGNS_HEAVY_QUEUE  # named here too, so a test's worker can take it
    transaction.on_commit(lambda: task_enqueue(CAMPAIGN_JOB_RUN, job.pk, queue=queue))
    return job


@contextmanager
def _progress_writer(job_id: int, total: int | None) -> Iterator[ProgressReport]:
    """Report progress through a second, autocommit connection: the work's own transaction
    stays open until the end, and its writes are invisible until then."""
    raw = connection.Database.connect(**connection.get_connection_params())  # type: ignore[attr-defined]
    raw.autocommit = True
    last = 0.0

    def report(done: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < PROGRESS_INTERVAL:
            return
        last = now
        with raw.cursor() as cursor:
            cursor.execute(
                "UPDATE campaigns_campaignjob SET progress_done = %s, progress_total = %s "
                "WHERE id = %s AND status = 'running'",
                [done, total, job_id],
            )

    try:
        report(0)
        yield report
    finally:
        raw.close()


def _preview(job: CampaignJob, actor: Actor, progress: ProgressReport) -> dict[str, Any]:
    assert job.campaign is not None
    return selectors.campaign_preview(campaign=job.campaign, progress=progress)


def _launch(job: CampaignJob, actor: Actor, progress: ProgressReport) -> dict[str, Any]:
    assert job.campaign is not None
    campaign = campaign_launch(campaign=job.campaign, actor=actor, progress=progress)
    return {"status": campaign.status, **campaign.launch_summary}


def _import(job: CampaignJob, actor: Actor, progress: ProgressReport) -> dict[str, Any]:
    return contacts_import(text=job.payload, actor=actor, progress=progress).as_dict()


RUNNERS: dict[str, Callable[[CampaignJob, Actor, ProgressReport], dict[str, Any]]] = {
    Kind.PREVIEW: _preview,
    Kind.LAUNCH: _launch,
    Kind.IMPORT: _import,
}


def _job_total(job: CampaignJob) -> int:
    if job.kind == Kind.IMPORT:
        return max(job.payload.count("\n"), 1)  # rows, near enough: the header is one line
    return Contact.objects.count()


def _job_fail(job_id: int, *, code: str, detail: str, errors: Any = None) -> None:
    CampaignJob.objects.filter(pk=job_id).update(
        status=Status.FAILED,
        finished_at=timezone.now(),
        payload="",
        error={"code": code, "detail": detail, "errors": errors or {}},
    )


def campaign_job_run(*, job_id: int) -> str:
    """Run a queued job once (a redelivered task finds it no longer queued); what happened."""
    claimed = CampaignJob.objects.filter(pk=job_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return "skipped"
    job = CampaignJob.objects.select_related("campaign", "requested_by").get(pk=job_id)
    actor: User | None = job.requested_by
    total = _job_total(job)
    try:
        with _progress_writer(job.pk, total) as progress, transaction.atomic():
            result = RUNNERS[job.kind](job, actor, progress)
            # In the work's transaction: the launch and its job's success commit together.
            CampaignJob.objects.filter(pk=job.pk).update(
                status=Status.SUCCEEDED,
                result=result,
                payload="",
                progress_done=total,
                progress_total=total,
                finished_at=timezone.now(),
            )
    except DomainError as error:
        _job_fail(job.pk, code=error.code, detail=error.detail, errors=error.errors)
        return f"failed:{error.code}"
    except SoftTimeLimitExceeded:
        limit = settings.CAMPAIGNS_HEAVY_SOFT_TIME_LIMIT_SECONDS
        _job_fail(job.pk, code="time_limit", detail=f"The job ran past its {limit} s limit.")
        return "failed:time_limit"
    except Exception:
        logger.exception("campaign_job_failed", job_id=job.pk, kind=job.kind)
        _job_fail(job.pk, code="internal_error", detail="The job failed; see the worker log.")
        return "failed:internal_error"
    return "succeeded"
