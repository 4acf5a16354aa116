"""End to end over real HTTP: predict, list, detail and both nearest forms on a live server."""

import pytest
import requests

from risk.tests.factories import applicant


@pytest.mark.django_db(transaction=True)
def test_the_records_api_works_against_a_running_server(credit_model, api_key, live_server):
    session = requests.Session()
    session.headers["Authorization"] = f"Api-Key {api_key[1]}"
    api = f"{live_server.url}/api/v1"
    record_ids = []
    for index in range(6):
        response = session.post(
            f"{api}/predict/",
            json={"model_id": "credit-default", "features": applicant(index)},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        record_ids.append(response.json()["record_id"])

    rejected = session.post(
        f"{api}/predict/",
        json={"model_id": "credit-default", "features": applicant(0, age=-1, job=7)},
        timeout=30,
    )
    listed = session.get(f"{api}/records/?ordering=created_at&page_size=4", timeout=30).json()
    following = session.get(listed["next"], timeout=30).json()
    detail = session.get(f"{api}/records/{record_ids[2]}/", timeout=30).json()
    nearest = session.get(f"{api}/records/{record_ids[2]}/nearest/?k=3", timeout=30).json()
    search = session.post(
        f"{api}/records/nearest/",
        json={"model_id": "credit-default", "features": applicant(4), "k": 2},
        timeout=30,
    ).json()

    assert rejected.status_code == 400
    assert rejected.headers["Content-Type"] == "application/problem+json"
    assert rejected.json()["errors"] == {
        "features.age": ["must be ≥ 18"],
        "features.job": ["must be a string"],
    }
    assert [row["id"] for row in listed["results"]] == record_ids[:4]
    assert [row["id"] for row in following["results"]] == record_ids[4:]
    assert following["next"] is None
    assert detail["features"] == applicant(2)
    assert len(nearest["results"]) == 3
    assert record_ids[2] not in [row["id"] for row in nearest["results"]]
    assert search["results"][0]["id"] == record_ids[4]
    assert search["results"][0]["distance"] == pytest.approx(0, abs=1e-6)
