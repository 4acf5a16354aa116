"""Backtests: what candidate versions would have decided over stored events of a window."""

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Greatest
from django.utils import timezone

from core.audit import actor_label_for
from core.errors import InvalidInput
from decisions import engine, enqueue, replay_selectors, selectors, similarity, velocity
from decisions.exceptions import BacktestInProgress
from decisions.models import Backtest, Event, Rule, RuleVersion
from decisions.services.shared import Actor

MAX_CANDIDATES = 50


def _candidate_versions(candidates: Sequence[Mapping[str, Any]]) -> list[RuleVersion]:
    """The versions the candidates name, at most one per rule."""
    resolved = []
    for index, candidate in enumerate(candidates):
        key, number = candidate.get("rule_key"), candidate.get("version")
        if not isinstance(key, str) or not isinstance(number, int):
            raise InvalidInput(
                "Each candidate needs rule_key and version.",
                errors={f"candidates[{index}]": ["rule_key and version required."]},
            )
        # Every name is looked up first: an unknown rule or version is a 404 before anything.
        resolved.append(selectors.rule_version_get(key=key, number=number))
    seen_rules: set[str] = set()
    for index, version in enumerate(resolved):
        if version.rule.key in seen_rules:
            raise InvalidInput(
                f"Rule {version.rule.key} is named twice.",
                errors={f"candidates[{index}]": ["Duplicate rule."]},
            )
        seen_rules.add(version.rule.key)
    return resolved


def backtest_window(
    *, window_start: datetime | None, window_end: datetime | None
) -> tuple[datetime, datetime]:
    """The window a backtest covers, never longer than the cap: it ends now unless told
    otherwise and starts DECISIONS_BACKTEST_DEFAULT_WINDOW_DAYS (30) before its end."""
    window_end = window_end or timezone.now()
    window_start = window_start or window_end - timedelta(
        days=settings.DECISIONS_BACKTEST_DEFAULT_WINDOW_DAYS
    )
    if window_start >= window_end:
        raise InvalidInput(
            "The window ends before it starts.", errors={"window_end": ["After window_start."]}
        )
    cap = settings.DECISIONS_BACKTEST_MAX_WINDOW_DAYS
    if window_end - window_start > timedelta(days=cap):
        raise InvalidInput(
            f"A backtest window spans at most {cap} days.",
            errors={"window_start": [f"At most {cap} days before window_end."]},
        )
    return window_start, window_end


@transaction.atomic
def backtest_create(
    *,
    candidates: Sequence[Mapping[str, Any]],
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    actor: Actor = None,
) -> Backtest:
    """Queue a backtest of candidate versions over stored events of a window.

    Without a window it covers the last 30 days (the setting) of stored events. Small windows
    run at once (the caller gets the results); larger ones run in a Celery task enqueued after
    commit, which reports progress on the row.
    """
    if not candidates:
        raise InvalidInput("Name at least one candidate.", errors={"candidates": ["Required."]})
    if len(candidates) > MAX_CANDIDATES:
        raise InvalidInput(
            f"At most {MAX_CANDIDATES} candidates.", errors={"candidates": ["Too many."]}
        )
    resolved = _candidate_versions(candidates)  # an unknown rule is a 404 whatever the window
    window_start, window_end = backtest_window(window_start=window_start, window_end=window_end)
    _one_at_a_time(resolved)
    backtest = Backtest.objects.create(
        candidates=[
            {"rule_key": version.rule.key, "version": version.number, "version_id": version.pk}
            for version in resolved
        ],
        event_types=sorted({version.rule.event_type for version in resolved}),
        window_start=window_start,
        window_end=window_end,
        created_by_label=actor_label_for(actor),
    )
    total = _backtest_events(backtest).count()
    if total > settings.DECISIONS_BACKTEST_MAX_EVENTS:
        # Raising rolls the new row back with the rest of the transaction.
        raise InvalidInput(
            f"The window holds {total} decided events; a backtest covers at most "
            f"{settings.DECISIONS_BACKTEST_MAX_EVENTS}. Choose a shorter window.",
            errors={"window_start": ["Too many events in the window."]},
        )
    Backtest.objects.filter(pk=backtest.pk).update(total=total)
    backtest.total = total
    if total > settings.DECISIONS_BACKTEST_INLINE_MAX_EVENTS:
        enqueue.backtest_run_enqueue(backtest_id=backtest.pk)
        return backtest
    return backtest_run(backtest_id=backtest.pk) or backtest


def _one_at_a_time(versions: Sequence[RuleVersion]) -> None:
    """Refuse (409) a backtest of a rule that already has one queued or running.

    The rules are locked first, so two requests for the same rule cannot both pass. A backtest
    still "running" long after any worker could have finished it (its process was killed) no
    longer blocks.
    """
    keys = sorted({version.rule.key for version in versions})
    list(Rule.objects.select_for_update().filter(key__in=keys).order_by("key"))
    stale_before = timezone.now() - timedelta(seconds=settings.DECISIONS_BACKTEST_STALE_SECONDS)
    active = Backtest.objects.filter(
        status__in=[Backtest.Status.QUEUED, Backtest.Status.RUNNING], created_at__gte=stale_before
    )
    for key in keys:
        busy = active.filter(candidates__contains=[{"rule_key": key}]).first()
        if busy is not None:
            raise BacktestInProgress(
                f"Backtest {busy.pk} of rule {key} is still {busy.status}; one backtest per rule "
                "runs at a time. Wait for it to finish.",
                errors={"candidates": [f"{key} has a backtest {busy.status}."]},
                backtest_id=busy.pk,
            )


def _backtest_events(backtest: Backtest) -> QuerySet[Event]:
    return (
        Event.objects.filter(
            type__in=backtest.event_types,
            received_at__gte=backtest.window_start,
            received_at__lt=backtest.window_end,
            decision__isnull=False,
        )
        .select_related("decision")
        .order_by("received_at", "id")
    )


def backtest_run(*, backtest_id: int) -> Backtest | None:
    """Evaluate the candidates over the window's events, recording progress per batch.

    Not one transaction on purpose: progress commits batch by batch so a watcher sees it. It
    reads events and decisions and writes only the backtest row, so running it twice only
    recomputes the same results.
    """
    claimed = Backtest.objects.filter(
        pk=backtest_id, status__in=[Backtest.Status.QUEUED, Backtest.Status.RUNNING]
    ).update(status=Backtest.Status.RUNNING, processed=0)
    backtest = Backtest.objects.filter(pk=backtest_id).first()
    if backtest is None or not claimed:
        return backtest
    try:
        results = _backtest_evaluate(backtest)
    except Exception as error:
        reason = str(error) or type(error).__name__
        if isinstance(error, SoftTimeLimitExceeded):
            reason = (
                f"Stopped after the time limit of {settings.DECISIONS_BACKTEST_SOFT_TIME_LIMIT} s; "
                "choose a shorter window."
            )
        Backtest.objects.filter(pk=backtest_id).update(
            status=Backtest.Status.FAILED, error=reason[:2000], finished_at=timezone.now()
        )
        raise
    Backtest.objects.filter(pk=backtest_id).update(
        status=Backtest.Status.COMPLETED,
        results=results,
        total=results["evaluated"],
        processed=results["evaluated"],
        finished_at=timezone.now(),
    )
    backtest.refresh_from_db()
    return backtest


def _backtest_evaluate(backtest: Backtest) -> dict[str, Any]:
    candidate_versions = selectors.versions_by_id(
        version_ids=[candidate["version_id"] for candidate in backtest.candidates]
    ).values()
    # Per event type, the candidates that replace their rule's live version (or join the set).
    candidates: dict[str, dict[str, engine.CompiledVersion]] = {}
    for version in candidate_versions:
        candidates.setdefault(version.rule.event_type, {})[version.rule.key] = (
            selectors.compiled_version(version, status=engine.PUBLISHED)
        )
    candidate_ids = {
        version.version_id for by_key in candidates.values() for version in by_key.values()
    }
    candidate_lists = selectors.list_contents(
        names={
            name
            for by_key in candidates.values()
            for version in by_key.values()
            for name in version.list_names
        }
    )
    candidate_rows = {version.pk: version for version in candidate_versions}
    known: dict[int, engine.CompiledVersion] = {}
    transitions: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], list[int]] = {}
    evaluated = changed = candidate_errors = 0
    for batch in _event_batches(backtest):
        missing = {
            entry["version_id"]
            for event in batch
            for entry in event.decision.trace
            if entry["version_id"] not in known
        }
        for version_id, version in selectors.versions_by_id(version_ids=missing).items():
            known[version_id] = selectors.compiled_version(version, status=engine.PUBLISHED)
        for event in batch:
            decision = event.decision
            # The rule set that decided this event, with the candidates swapped in; the lists
            # and policy it saw (candidates reading other lists get today's contents).
            rule_set = {
                entry["rule"]: known[entry["version_id"]]
                for entry in decision.trace
                if entry["status"] == engine.PUBLISHED and entry["version_id"] in known
            }
            rule_set.update(candidates.get(event.type, {}))
            lists = {name: content["values"] for name, content in candidate_lists.items()}
            lists.update(
                {name: content["values"] for name, content in decision.lists_snapshot.items()}
            )
            result = replay_selectors.decision_reevaluate(
                decision=decision,
                versions=list(rule_set.values()),
                lists=lists,
                history=_history_with_candidates(
                    event=event,
                    candidates=[
                        candidate_rows[version.version_id]
                        for version in candidates.get(event.type, {}).values()
                    ],
                ),
            )
            evaluated += 1
            candidate_errors += sum(
                1
                for entry in result.trace
                if entry["version_id"] in candidate_ids and entry["result"] == "error"
            )
            if result.outcome != decision.outcome:
                changed += 1
                transition = (decision.outcome, result.outcome)
                transitions[transition] += 1
                bucket = examples.setdefault(transition, [])
                if len(bucket) < settings.DECISIONS_BACKTEST_EXAMPLES:
                    bucket.append(event.pk)
        Backtest.objects.filter(pk=backtest.pk).update(
            processed=evaluated, total=Greatest(F("total"), evaluated)
        )
    return {
        "evaluated": evaluated,
        "changed": changed,
        "unchanged": evaluated - changed,
        "candidate_errors": candidate_errors,
        "transitions": [
            {"from": old, "to": new, "count": count, "example_event_ids": examples[(old, new)]}
            for (old, new), count in sorted(
                transitions.items(), key=lambda item: (-item[1], item[0])
            )
        ],
    }


def _history_with_candidates(*, event: Event, candidates: Sequence[RuleVersion]) -> dict[str, Any]:
    """The decision's stored history, plus what candidates read that it lacks: computed now
    from the events before this one (velocity) and the records before its own (similar)."""
    decision = event.decision
    history = dict(decision.history)
    stored_velocity = history.get("velocity", {})
    missing = {
        name
        for version in candidates
        for name in version.velocity_names
        if name not in stored_velocity
    }
    if missing:
        computed = velocity.velocity_values(
            event=event,
            aggregates=velocity.aggregates_named(event_type=event.type, names=missing),
        )
        history["velocity"] = {**stored_velocity, **computed}
    if (
        "similar" not in history
        and decision.risk_record_id is not None
        and any(version.reads_similar for version in candidates)
    ):
        history["similar"] = similarity.similar_cases(record_id=decision.risk_record_id)
    return history


def _event_batches(backtest: Backtest) -> Iterator[list[Event]]:
    """The window's decided events in (received_at, id) order, a keyset page at a time."""
    events = _backtest_events(backtest)
    batch_size = settings.DECISIONS_BACKTEST_BATCH_SIZE
    last: Event | None = None
    while True:
        page = events
        if last is not None:
            page = page.filter(
                Q(received_at__gt=last.received_at)
                | Q(received_at=last.received_at, id__gt=last.pk)
            )
        batch = list(page[:batch_size])
        if not batch:
            return
        yield batch
        last = batch[-1]
