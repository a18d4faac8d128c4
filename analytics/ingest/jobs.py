"""Platform imports started by staff from the admin (docs/IMPORT.md, "From the admin").

import_job_create stores the uploaded files on an ImportJob and enqueues import_job_run_task when the row commits;
the task calls import_job_execute, which claims the job (queued → running, a conditional UPDATE, so a redelivered
task does not import twice), runs the same importer as the command with the same validation and modes, records
progress in the cache, and keeps every rejected row as a downloadable CSV (file, line, column, reason, raw).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from celery import current_app
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from analytics.jobs import tracked
from analytics.models import ImportJob

PROGRESS_TTL_SECONDS = 24 * 3600
FILE_KINDS = ("members", "products", "orders", "events")


def progress_key(job_id: int) -> str:
    return f"import-job:{job_id}:progress"


def import_job_progress(job: ImportJob) -> dict[str, Any]:
    """{"percent": 0..100, "stage": text}; finished jobs report 100."""
    if job.status in (ImportJob.Status.SUCCEEDED, ImportJob.Status.REJECTED, ImportJob.Status.FAILED):
        return {"percent": 100, "stage": job.get_status_display()}
    return cache.get(progress_key(job.pk)) or {"percent": 0, "stage": job.get_status_display()}


def _enqueue(job_id: int) -> None:
    # By name: analytics.ingest.tasks imports this module, so this module does not import it back.
    current_app.signature("analytics.ingest.tasks.import_job_run_task", args=(job_id,)).delay()


@transaction.atomic
def import_job_create(*, created_by: Any, files: dict[str, UploadedFile | None], dry_run: bool, partial: bool,
                      encoding: str = "") -> ImportJob:
    if not any(files.get(kind) for kind in FILE_KINDS):
        raise ValueError("Upload at least one of the members, products, orders or events files.")
    job = ImportJob(created_by=created_by, dry_run=dry_run, partial=partial, encoding=encoding.strip())
    for kind in FILE_KINDS:
        upload = files.get(kind)
        if upload:
            getattr(job, f"{kind}_file").save(upload.name, upload, save=False)
    job.save()
    transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def import_job_rerun(*, job: ImportJob, created_by: Any, dry_run: bool) -> ImportJob:
    """The same files again, e.g. for real after a clean dry run (the files are shared, not copied)."""
    with transaction.atomic():
        again = ImportJob.objects.create(
            created_by=created_by, dry_run=dry_run, partial=job.partial, encoding=job.encoding,
            **{field: getattr(job, field).name for field in ImportJob.FILE_FIELDS},
        )
        transaction.on_commit(lambda: _enqueue(again.pk))
    return again


def import_job_execute(*, job_id: int) -> ImportJob:
    from analytics.ingest.files import normalise_encoding
    from analytics.ingest.platform import import_platform_data, render_report

    # Claim: only one task moves the job out of "queued"; a redelivered or duplicate task finds nothing to do.
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started_at=timezone.now())
    job = ImportJob.objects.get(pk=job_id)
    if not claimed:
        return job
    paths = {kind: Path(getattr(job, f"{kind}_file").path) for kind in FILE_KINDS if getattr(job, f"{kind}_file")}
    steps = len(paths) + 2  # each file (validated and written in one pass), members from activity, ANALYZE
    done = 0

    def say(message: str) -> None:
        nonlocal done
        done += 1
        cache.set(progress_key(job_id), {"percent": min(99, round(100 * done / steps)), "stage": message},
                  PROGRESS_TTL_SECONDS)

    cache.set(progress_key(job_id), {"percent": 1, "stage": "validating"}, PROGRESS_TTL_SECONDS)
    with tempfile.TemporaryDirectory() as tmp, tracked("import_platform_data", params={"import_job": job_id}) as run:
        errors_path = Path(tmp) / "errors.csv"
        try:
            report = import_platform_data(
                **paths, dry_run=job.dry_run, partial=job.partial, errors_out=errors_path, log=say,
                encoding=normalise_encoding(job.encoding),
            )
        except Exception as exc:
            job.status = ImportJob.Status.FAILED
            job.error = f"{type(exc).__name__}: {exc}"
            job.finished_at = timezone.now()
            job.save(update_fields=["status", "error", "finished_at"])
            raise
        job.report = render_report(report)
        job.error_count = report.error_count
        job.written = report.written
        job.status = ImportJob.Status.SUCCEEDED if report.ok else ImportJob.Status.REJECTED
        job.finished_at = timezone.now()
        if report.error_count:
            # With a byte-order mark, so Excel opens the Chinese reasons and raw rows correctly.
            job.errors_file.save(f"import-{job.pk}-errors.csv",
                                 ContentFile(b"\xef\xbb\xbf" + errors_path.read_bytes()), save=False)
        job.save()
        run.rows = sum(f.valid for f in report.files.values())
        run.message = f"{job.get_status_display()}: {report.error_count} problem(s)"
    cache.delete(progress_key(job_id))
    return job
