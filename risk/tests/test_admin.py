from risk.models import ModelVersion
from risk.tests.factories import credit_model_register


def test_staff_promote_a_version_from_the_admin(credit_model, staff_client):
    staging = credit_model_register(promote=False)

    response = staff_client.post(
        "/admin/risk/modelversion/",
        {"action": "promote", "_selected_action": [staging.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "is now in production" in response.content.decode()
    assert dict(ModelVersion.objects.values_list("version", "stage")) == {
        1: "archived",
        2: "production",
    }


def test_the_admin_promotes_one_version_at_a_time(credit_model, staff_client):
    staging = credit_model_register(promote=False)

    response = staff_client.post(
        "/admin/risk/modelversion/",
        {"action": "promote", "_selected_action": [credit_model.pk, staging.pk]},
        follow=True,
    )

    assert "Select exactly one version to promote." in response.content.decode()
    assert ModelVersion.objects.get(stage="production").pk == credit_model.pk


def test_the_admin_pages_render(credit_model, staff_client):
    for url in (
        "/admin/risk/modelversion/",
        f"/admin/risk/modelversion/{credit_model.pk}/change/",
        f"/admin/risk/riskmodel/{credit_model.model_id}/change/",
        "/admin/records/predictionrecord/",
    ):
        assert staff_client.get(url).status_code == 200, url
