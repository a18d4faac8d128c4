"""Staff upload an import in the admin; a Celery job runs it with progress; row errors are downloadable."""
from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import Workbook

from analytics.ingest.jobs import import_job_execute, import_job_progress
from analytics.models import ImportJob, JobRun
from members.models import Order, User

pytestmark = pytest.mark.django_db

MEMBERS_GBK = "member_id,name\nm1,李小龙\nm2,王芳\n".encode("gbk")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _xlsx(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _upload(client, capture, **fields):
    data = {"dry_run": "", "partial": "", "encoding": "", **fields}
    with capture(execute=True):
        response = client.post(reverse("admin:analytics_importjob_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return ImportJob.objects.latest("pk")


def test_a_dry_run_upload_validates_and_writes_nothing_then_imports_for_real(
    staff_client, django_capture_on_commit_callbacks
):
    job = _upload(staff_client, django_capture_on_commit_callbacks,
                  members_file=SimpleUploadedFile("members.csv", MEMBERS_GBK), dry_run="on")

    job.refresh_from_db()
    assert job.status == ImportJob.Status.SUCCEEDED and job.dry_run and not job.written
    assert "members.csv" in job.report
    assert not User.objects.filter(external_id="m1").exists()
    assert import_job_progress(job)["percent"] == 100
    assert JobRun.objects.filter(job="import_platform_data", status=JobRun.Status.SUCCEEDED).exists()

    changelist = reverse("admin:analytics_importjob_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(changelist, {"action": "import_for_real", "_selected_action": [job.pk]})
    real = ImportJob.objects.latest("pk")
    assert real.pk != job.pk and real.status == ImportJob.Status.SUCCEEDED and real.written
    assert dict(User.objects.filter(external_id__in=["m1", "m2"]).values_list("external_id", "display_name")) == {
        "m1": "李小龙", "m2": "王芳"}
    page = staff_client.get(reverse("admin:analytics_importjob_change", args=[real.pk]))
    assert page.status_code == 200 and "100%" in page.content.decode()


def test_row_errors_of_an_xlsx_are_downloadable_by_line(staff_client, django_capture_on_commit_callbacks):
    orders = _xlsx([["order_id", "member_id", "amount", "ordered_at"], ["o1", "m1", 10, "2024-01-02"],
                    ["o2", "m2", "abc", "2024-01-03"]])
    job = _upload(staff_client, django_capture_on_commit_callbacks, partial="on",
                  orders_file=SimpleUploadedFile("orders.xlsx", orders))

    job.refresh_from_db()
    assert job.status == ImportJob.Status.REJECTED and job.written and job.error_count == 1
    assert Order.objects.filter(external_id="o1").exists() and not Order.objects.filter(external_id="o2").exists()
    response = staff_client.get(reverse("admin:analytics_importjob_errors", args=[job.pk]))
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [(r["line"], r["column"], r["reason"]) for r in rows] == [("3", "amount", "not a decimal number ('abc')")]
    assert rows[0]["file"].startswith("orders")


def test_an_upload_without_files_or_with_a_bad_encoding_is_refused(staff_client):
    response = staff_client.post(reverse("admin:analytics_importjob_add"), {"encoding": ""})
    assert response.status_code == 200 and "Upload at least one" in response.content.decode()
    response = staff_client.post(reverse("admin:analytics_importjob_add"), {
        "members_file": SimpleUploadedFile("members.csv", MEMBERS_GBK), "encoding": "klingon"})
    assert response.status_code == 200 and "unknown encoding" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_a_redelivered_task_does_not_import_twice(staff_client, django_capture_on_commit_callbacks):
    job = _upload(staff_client, django_capture_on_commit_callbacks,
                  members_file=SimpleUploadedFile("members.csv", MEMBERS_GBK))
    runs = JobRun.objects.count()
    again = import_job_execute(job_id=job.pk)
    assert again.status == ImportJob.Status.SUCCEEDED and JobRun.objects.count() == runs


def test_learners_cannot_upload(alice_client):
    response = alice_client.get(reverse("admin:analytics_importjob_add"))
    assert response.status_code == 302
