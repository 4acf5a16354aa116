from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection, transaction

from records.models import PredictionRecord
from records.selectors import record_nearest
from records.tests.factories import record_create
from risk.tests.factories import applicant


def _predict(api_client, features, **headers):
    return api_client.post(
        "/api/v1/predict/",
        {"model_id": "credit-default", "features": features},
        format="json",
        headers=headers,
    )


def test_predict_answers_201_with_score_label_and_sorted_drivers(credit_model, api_client):
    response = _predict(api_client, applicant(0))

    assert response.status_code == 201
    body = response.json()
    record = PredictionRecord.objects.get()
    assert body["record_id"] == record.pk
    assert (body["model_id"], body["model_version"]) == ("credit-default", 1)
    assert body["risk_score"] == record.risk_score
    assert body["risk_label"] == record.risk_label
    magnitudes = [abs(d["contribution"]) for d in body["drivers"]]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert len(body["drivers"]) == 20
    assert body["base_logit"] == record.base_logit
    assert record.source == "api"


def test_predict_problem_names_each_bad_field_and_stores_nothing(credit_model, api_client):
    features = applicant(0, age=130, purpose="boat", colour="red")
    del features["housing"]

    response = _predict(api_client, features)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "invalid_features"
    assert body["errors"] == {
        "features.colour": ["unknown feature"],
        "features.purpose": [body["errors"]["features.purpose"][0]],
        "features.age": ["must be ≤ 120"],
        "features.housing": ["required"],
    }
    assert body["errors"]["features.purpose"][0].startswith("unknown category 'boat'")
    assert not PredictionRecord.objects.exists()


def test_predict_with_a_malformed_body_is_a_problem(credit_model, api_client):
    response = api_client.post(
        "/api/v1/predict/", {"model_id": "credit-default", "features": [1, 2]}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["features"]
    assert not PredictionRecord.objects.exists()


def test_predict_with_an_unknown_model_or_version_is_a_404_problem(credit_model, api_client):
    unknown_model = _predict(api_client, applicant(0)).json()  # baseline works
    response = api_client.post(
        "/api/v1/predict/", {"model_id": "churn", "features": applicant(0)}, format="json"
    )
    version = api_client.post(
        "/api/v1/predict/",
        {"model_id": "credit-default", "features": applicant(0), "version": 9},
        format="json",
    )

    assert unknown_model["model_version"] == 1
    assert response.status_code == 404
    assert response.json()["errors"] == {"model_id": ["unknown model 'churn'"]}
    assert version.status_code == 404
    assert version.json()["errors"] == {"version": ["Model 'credit-default' has no version 9."]}
    assert PredictionRecord.objects.count() == 1


def test_predict_replays_an_idempotent_retry_without_a_second_record(credit_model, api_client):
    first = _predict(api_client, applicant(0), **{"Idempotency-Key": "abc-1"})
    retry = _predict(api_client, applicant(0), **{"Idempotency-Key": "abc-1"})
    changed = _predict(api_client, applicant(1), **{"Idempotency-Key": "abc-1"})

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert changed.status_code == 422
    assert PredictionRecord.objects.count() == 1


@pytest.fixture
def varied_records(credit_model):
    """Six records with known labels, sources, scores and times."""
    records = {}
    for name, index, source, day in [
        ("a", 0, "api", 1),
        ("b", 1, "form", 2),
        ("c", 2, "backfill", 3),
        ("d", 4, "decision", 4),
        ("e", 9, "api", 5),
        ("f", 10, "api", 6),
    ]:
        records[name] = record_create(
            index=index, source=source, created_at=datetime(2026, 1, day, tzinfo=UTC)
        )
    return records


def _ids(response):
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_records_list_newest_first_with_a_pinned_query_count(
    varied_records, api_client, django_assert_num_queries
):
    # API key lookup, page: no count.
    with django_assert_num_queries(2):
        response = api_client.get("/api/v1/records/")

    assert _ids(response) == [varied_records[n].pk for n in "fedcba"]
    assert (response.json()["next"], response.json()["previous"]) == (None, None)
    assert "count" not in response.json()
    assert set(response.json()["results"][0]) == {
        "id",
        "created_at",
        "model_id",
        "model_version",
        "risk_score",
        "risk_label",
        "source",
        "event_id",
    }


def test_records_list_filters_by_each_parameter(varied_records, api_client):
    records = list(varied_records.values())
    label = records[1].risk_label
    middle = sorted(r.risk_score for r in records)[2]

    def expect(predicate):
        return [
            r.pk for r in sorted(records, key=lambda r: r.created_at, reverse=True) if predicate(r)
        ]

    assert _ids(api_client.get(f"/api/v1/records/?risk_label={label}")) == expect(
        lambda r: r.risk_label == label
    )
    assert _ids(api_client.get("/api/v1/records/?source=api")) == expect(
        lambda r: r.source == "api"
    )
    assert _ids(api_client.get(f"/api/v1/records/?min_score={middle}")) == expect(
        lambda r: r.risk_score >= middle
    )
    assert _ids(api_client.get(f"/api/v1/records/?max_score={middle}")) == expect(
        lambda r: r.risk_score <= middle
    )
    assert _ids(
        api_client.get(
            "/api/v1/records/?created_after=2026-01-02T00:00:00Z"
            "&created_before=2026-01-04T00:00:00Z"
        )
    ) == [varied_records["c"].pk, varied_records["b"].pk]
    assert _ids(api_client.get("/api/v1/records/?model_id=credit-default")) == expect(
        lambda r: True
    )
    assert _ids(api_client.get("/api/v1/records/?model_id=churn")) == []


def test_records_list_sorts_by_score_and_time(varied_records, api_client):
    by_score = sorted(varied_records.values(), key=lambda r: (r.risk_score, r.pk))

    assert _ids(api_client.get("/api/v1/records/?ordering=risk_score")) == [r.pk for r in by_score]
    assert _ids(api_client.get("/api/v1/records/?ordering=created_at")) == [
        varied_records[n].pk for n in "abcdef"
    ]


def _walk(api_client, url, link="next"):
    """Every page from `url` on, following `link`: the ids of each page."""
    pages = []
    while url:
        response = api_client.get(url)
        pages.append(_ids(response))
        url = response.json()[link]
    return pages


@pytest.fixture
def tied_records(credit_model):
    """Seven records, five of them stored at the same instant (as a back-fill stores them)."""
    same = datetime(2026, 1, 2, tzinfo=UTC)
    times = [datetime(2026, 1, 1, tzinfo=UTC), *[same] * 5, datetime(2026, 1, 3, tzinfo=UTC)]
    return [record_create(index=i, created_at=at) for i, at in enumerate(times)]


def test_records_list_pages_by_cursor_through_tied_times_each_record_once(tied_records, api_client):
    newest_first = sorted(tied_records, key=lambda r: (r.created_at, r.pk), reverse=True)

    pages = _walk(api_client, "/api/v1/records/?page_size=2")

    assert pages == [[r.pk for r in newest_first[i : i + 2]] for i in range(0, 7, 2)]


def test_records_list_pages_back_with_previous_to_the_first_page(tied_records, api_client):
    forward = api_client.get("/api/v1/records/?page_size=3").json()
    middle = api_client.get(forward["next"]).json()
    last = api_client.get(middle["next"]).json()

    back = _walk(api_client, last["previous"], link="previous")

    assert back == [_ids_of(middle), _ids_of(forward)]
    assert last["next"] is None
    assert len(_ids_of(last)) == 1


def _ids_of(body):
    return [row["id"] for row in body["results"]]


def test_records_list_pages_keep_the_filters_and_the_score_order(varied_records, api_client):
    by_score = sorted(varied_records.values(), key=lambda r: (r.risk_score, r.pk))
    high = sorted(
        (r for r in varied_records.values() if r.source == "api"),
        key=lambda r: (r.risk_score, r.pk),
        reverse=True,
    )

    ascending = _walk(api_client, "/api/v1/records/?ordering=risk_score&page_size=4")
    filtered = _walk(api_client, "/api/v1/records/?source=api&ordering=-risk_score&page_size=2")

    assert ascending == [[r.pk for r in by_score[:4]], [r.pk for r in by_score[4:]]]
    assert filtered == [[r.pk for r in high[:2]], [r.pk for r in high[2:]]]


def test_a_deep_page_reads_one_index_range_with_a_pinned_query_count(
    tied_records, api_client, django_assert_num_queries
):
    second = api_client.get("/api/v1/records/?page_size=2").json()["next"]

    # API key lookup, page: the cursor is a row comparison, not an OFFSET or a count.
    with django_assert_num_queries(2) as captured:
        response = api_client.get(second)

    page_sql = captured.captured_queries[-1]["sql"]
    assert response.status_code == 200
    assert '("records_predictionrecord"."created_at", "records_predictionrecord"."id") <' in (
        page_sql
    )
    assert "OFFSET" not in page_sql


@pytest.mark.parametrize(
    "cursor",
    [
        "not-base64!",
        "eyJvIjoiLWNyZWF0ZWRfYXQifQ==",  # {"o":"-created_at"}: no position
        # {"o":"-created_at","p":["2026-01-01T00:00:00","1"],"r":false}: a naive time
        "eyJvIjoiLWNyZWF0ZWRfYXQiLCJwIjpbIjIwMjYtMDEtMDFUMDA6MDA6MDAiLCIxIl0sInIiOmZhbHNlfQ==",
        # {"o":"-created_at","p":["2026-01-01T00:00:00+00:00","1e40"],"r":false}: not an id
        "eyJvIjoiLWNyZWF0ZWRfYXQiLCJwIjpbIjIwMjYtMDEtMDFUMDA6MDA6MDArMDA6MDAiLCIxZTQwIl0sInIi"
        "OmZhbHNlfQ==",
        # {"o":"-created_at","p":["2026-01-01T00:00:00+00:00","99999999999999999999"],
        #  "r":false}: an id beyond bigint
        "eyJvIjoiLWNyZWF0ZWRfYXQiLCJwIjpbIjIwMjYtMDEtMDFUMDA6MDA6MDArMDA6MDAiLCI5OTk5OTk5OTk5"
        "OTk5OTk5OTk5OTkiXSwiciI6ZmFsc2V9",
        "x" * 600,
    ],
)
def test_records_list_refuses_a_malformed_cursor_with_a_problem_naming_it(
    varied_records, api_client, cursor
):
    response = api_client.get("/api/v1/records/", {"cursor": cursor})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert list(response.json()["errors"]) == ["cursor"]


def test_records_list_refuses_a_cursor_of_another_ordering(varied_records, api_client):
    by_score = api_client.get("/api/v1/records/?ordering=risk_score&page_size=2").json()["next"]
    [cursor] = parse_qs(urlsplit(by_score).query)["cursor"]

    response = api_client.get("/api/v1/records/", {"cursor": cursor, "ordering": "created_at"})

    assert response.status_code == 400
    assert response.json()["errors"] == {"cursor": ["issued for another ordering"]}


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"page": "2"}, "page"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "201"}, "page_size"),
    ],
)
def test_records_list_refuses_page_numbers_and_bad_page_sizes(
    varied_records, api_client, query, parameter
):
    response = api_client.get("/api/v1/records/", query)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [parameter]


def test_records_list_rejects_bad_filters_with_a_problem(varied_records, api_client):
    response = api_client.get("/api/v1/records/?min_score=high&source=email")

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"min_score", "source"}


def test_record_detail_has_features_drivers_and_the_embedding(credit_model, api_client):
    record = record_create(index=5, event_id=12)

    body = api_client.get(f"/api/v1/records/{record.pk}/").json()

    assert body["features"] == applicant(5)
    assert body["event_id"] == 12
    assert len(body["embedding"]) == 384
    assert body["drivers"] == record.drivers
    assert api_client.get("/api/v1/records/999999/").status_code == 404


@pytest.fixture
def demo_records(credit_model):
    from django.core.management import call_command

    call_command("load_demo_records", "--count", "150", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return list(PredictionRecord.objects.order_by("id"))


def test_nearest_to_a_record_excludes_it_and_sorts_by_distance(demo_records, api_client):
    target = demo_records[0]

    response = api_client.get(f"/api/v1/records/{target.pk}/nearest/?k=7")

    assert response.status_code == 200
    body = response.json()
    assert (body["model_id"], body["k"]) == ("credit-default", 7)
    distances = [row["distance"] for row in body["results"]]
    assert len(distances) == 7
    assert distances == sorted(distances)
    assert target.pk not in [row["id"] for row in body["results"]]
    exact = record_nearest(
        model_id="credit-default",
        embedding=target.embedding,
        k=7,
        exclude_id=target.pk,
        exact=True,
    )
    assert distances == pytest.approx([n.distance for n in exact], abs=1e-6)


def test_nearest_to_features_finds_the_identical_stored_applicant(demo_records, api_client):
    response = api_client.post(
        "/api/v1/records/nearest/",
        {"model_id": "credit-default", "features": applicant(3), "k": 3},
        format="json",
    )

    assert response.status_code == 200
    first = response.json()["results"][0]
    assert first["id"] == demo_records[3].pk
    assert first["distance"] == pytest.approx(0, abs=1e-6)
    assert PredictionRecord.objects.count() == len(demo_records)


def test_nearest_rejects_bad_k_and_bad_features(demo_records, api_client):
    too_many = api_client.get(f"/api/v1/records/{demo_records[0].pk}/nearest/?k=1000")
    bad = api_client.post(
        "/api/v1/records/nearest/",
        {"model_id": "credit-default", "features": applicant(0, age=5), "k": 0},
        format="json",
    )
    invalid_features = api_client.post(
        "/api/v1/records/nearest/",
        {"model_id": "credit-default", "features": applicant(0, age=5)},
        format="json",
    )

    assert too_many.status_code == 400
    assert too_many.json()["errors"] == {"k": ["Ensure this value is less than or equal to 100."]}
    assert bad.status_code == 400
    assert list(bad.json()["errors"]) == ["k"]
    assert invalid_features.json()["errors"] == {"features.age": ["must be ≥ 18"]}
    assert api_client.get("/api/v1/records/999999/nearest/").status_code == 404
    assert PredictionRecord.objects.count() == len(demo_records)


def test_hnsw_answers_match_an_exact_sequential_scan(demo_records):
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Make the planner take the HNSW index even on this small table.
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                cursor.execute(f"SET LOCAL {setting} = off")
            cursor.execute(
                "EXPLAIN SELECT id FROM records_predictionrecord WHERE model_id = 'credit-default' "
                "ORDER BY embedding::halfvec(384) <=> "
                "(SELECT embedding::halfvec(384) FROM records_predictionrecord LIMIT 1) LIMIT 10"
            )
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "record_embedding_half_hnsw" in plan
        for target in demo_records[::15]:
            approximate = record_nearest(
                model_id="credit-default", embedding=target.embedding, k=10, exclude_id=target.pk
            )
            exact = record_nearest(
                model_id="credit-default",
                embedding=target.embedding,
                k=10,
                exclude_id=target.pk,
                exact=True,
            )
            # Ties (identical applicants) may swap ids, so compare the distances found.
            assert [n.distance for n in approximate] == pytest.approx(
                [n.distance for n in exact], abs=1e-6
            )
