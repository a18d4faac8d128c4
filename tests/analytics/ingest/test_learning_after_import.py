"""An import into a platform nothing has been learned from yet sends beat's weekly learning at once
(analytics.ingest.platform._nothing_learned_from, analytics.scoring.tasks.send_learning), so the first night only
scores."""
from __future__ import annotations

import pytest

from analytics.ingest.platform import import_platform_data, render_report
from analytics.models import ModelVersion, RecommendationRun
from analytics.scoring import tasks
from tests.analytics.ingest.test_platform import all_files, run, write

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch, settings) -> list[tuple[str, dict]]:
    """The learning tasks the import sends, recorded instead of run."""
    settings.ANALYTICS_LEARN_AFTER_IMPORT = True
    calls: list[tuple[str, dict]] = []
    for task in (tasks.train_repurchase_model_task, tasks.select_recommendation_blend_task):
        monkeypatch.setattr(task, "apply_async",
                            lambda *a, _name=task.name, **kw: calls.append((_name, kw)) or type("R", (), {"id": "x"}))
    return calls


def test_an_import_of_orders_into_a_platform_with_no_model_sends_the_weekly_learning_on_commit(
        tmp_path, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = import_platform_data(**all_files(tmp_path))
    assert sent == [] and report.learning.startswith("to be sent")  # nothing before the rows are committed
    for callback in callbacks:
        callback()
    assert [name for name, _ in sent] == ["analytics.scoring.tasks.train_repurchase_model_task",
                                          "analytics.scoring.tasks.select_recommendation_blend_task"]
    assert all(kw["expires"] == tasks.LEARNING_EXPIRES for _, kw in sent)
    assert report.learning.startswith("sent to the worker")
    assert "learning: sent to the worker" in render_report(report)


def test_no_learning_is_sent_once_a_model_serves_or_when_no_history_was_written(
        tmp_path, sent, django_capture_on_commit_callbacks):
    files = all_files(tmp_path)
    with django_capture_on_commit_callbacks(execute=True):
        assert import_platform_data(products=files["products"], members=files["members"]).learning == ""
        assert import_platform_data(**files, dry_run=True).learning == ""
        rejected = write(tmp_path, "bad-orders.csv", "order_id,member_id,product_id,amount,ordered_at\no9,m1,c1,abc,2024-01-01\n")
        assert import_platform_data(orders=rejected).learning == ""
    assert sent == []
    from django.utils import timezone

    ModelVersion.objects.create(kind="repurchase", algorithm="logistic_regression", is_serving=True,
                                as_of=timezone.now(), horizon_days=30, artifact_path="repurchase/v1.joblib")
    with django_capture_on_commit_callbacks(execute=True):
        assert import_platform_data(**files).learning == ""
    assert sent == []


def test_the_setting_turns_it_off(tmp_path, sent, settings, django_capture_on_commit_callbacks):
    settings.ANALYTICS_LEARN_AFTER_IMPORT = False
    with django_capture_on_commit_callbacks(execute=True):
        assert import_platform_data(**all_files(tmp_path)).learning == ""
    assert sent == []


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_does_not_answer_loses_none_of_the_import(tmp_path, settings, monkeypatch):
    """As an operator runs the command: no outer transaction, so the import commits and the learning is sent
    before the command prints its report."""
    settings.ANALYTICS_LEARN_AFTER_IMPORT = True

    def refused(*args, **kwargs):
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    monkeypatch.setattr(tasks.train_repurchase_model_task, "apply_async", refused)
    code, out, _ = run(**all_files(tmp_path))
    assert code == 0
    assert "learning: not sent (ConnectionRefusedError" in out and "the next nightly pipeline will learn" in out
    from members.models import Order

    assert Order.objects.count() == 4


def test_eagerly_the_learning_trains_a_serving_model_and_selects_a_blend(tmp_path, settings,
                                                                         django_capture_on_commit_callbacks):
    """The tasks themselves, run inline (eager mode), on the imported history."""
    settings.ANALYTICS_LEARN_AFTER_IMPORT = True
    with django_capture_on_commit_callbacks(execute=True):
        report = import_platform_data(**all_files(tmp_path))
    assert report.learning.startswith("sent")
    assert ModelVersion.objects.filter(kind="repurchase", is_serving=True).count() == 1
    assert RecommendationRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_command_says_what_was_sent(tmp_path, sent):
    code, out, _ = run(**all_files(tmp_path))
    assert code == 0 and "learning: sent to the worker" in out
    assert len(sent) == 2
