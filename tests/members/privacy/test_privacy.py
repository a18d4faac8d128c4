from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.apps import apps
from django.contrib.auth import authenticate
from django.db import models
from django.db.models import Sum
from django.urls import reverse

from analytics.models import (
    CampaignAssignment,
    EngagementScore,
    Event,
    PropensityScore,
    RecommendationSet,
    SegmentAssignment,
)
from community.models import Comment, Post, Reaction
from members.models import AuditLog, Order, Review, Subscription, User
from members.privacy.services import member_delete, member_export, member_export_archive
from tests.members.factories import UserFactory
from tests.members.history_factories import build_history

EMAIL = "zelda.quixote@example.org"
NAME = "Zelda Quixote"


@pytest.fixture
def zelda(db):
    return UserFactory(email=EMAIL, display_name=NAME, country="CN", time_zone="Asia/Shanghai", external_id="ext-zq")


def _models_pointing_at_user() -> set[str]:
    # Written independently of the service so the test fails if discovery misses a model.
    labels = set()
    for model in apps.get_models():
        for f in model._meta.concrete_fields:
            if isinstance(f, models.ForeignKey) and f.remote_field.model is User:
                labels.add(model._meta.label)
    return labels


def test_export_contains_every_model_that_references_the_member(zelda):
    build_history(zelda, size=2)
    export = member_export(member=zelda)
    exported = {key.rsplit(".", 1)[0] if key.count(".") == 2 else key for key in export["models"]}
    assert _models_pointing_at_user() <= exported
    assert export["member"]["email"] == EMAIL
    assert "password" not in export["member"]
    for label in ("members.Order", "members.Review", "members.Subscription", "community.Post", "community.Comment",
                  "analytics.Event", "analytics.EngagementScore", "analytics.PropensityScore", "analytics.MessageLog",
                  "members.Referral.referrer", "members.Referral.referred", "members.ReferralCode"):
        assert export["models"][label], label
    assert len(export["models"]["members.Order"]) == 2
    assert all("token" not in row for row in export["models"]["members.PaymentMethod"])
    assert AuditLog.objects.filter(action="member_exported", target_member_id=zelda.pk).exists()


def test_export_archive_is_a_zip_with_json(zelda):
    build_history(zelda, size=1)
    with zipfile.ZipFile(io.BytesIO(member_export_archive(member=zelda))) as archive:
        data = json.loads(archive.read("data.json"))
    assert data["member"]["display_name"] == NAME


def _personal_values_left(needles: list[str]) -> list[str]:
    hits = []
    for model in apps.get_models():
        text_fields = [f for f in model._meta.concrete_fields
                       if isinstance(f, (models.CharField, models.TextField, models.EmailField, models.JSONField))]
        if not text_fields:
            continue
        for row in model._default_manager.values_list("pk", *[f.attname for f in text_fields]):
            blob = json.dumps(row[1:], default=str).lower()
            for needle in needles:
                if needle.lower() in blob:
                    hits.append(f"{model._meta.label}#{row[0]}: {needle}")
    return hits


def test_after_deletion_no_personal_field_remains_and_totals_are_unchanged(zelda, charlie):
    other = build_history(zelda, size=3)
    assert _personal_values_left([EMAIL, NAME, "ext-zq"])  # the scan can see them before
    total_before = Order.objects.aggregate(s=Sum("amount_paid"))["s"]
    member_total_before = Order.objects.filter(member=zelda).aggregate(s=Sum("amount_paid"))["s"]
    events_before = Event.objects.filter(member=zelda).count()
    others_reviews = list(Review.objects.filter(member=other).values_list("pk", "helpful_count"))

    result = member_delete(member=zelda, actor=charlie)

    assert _personal_values_left([EMAIL, NAME, "ext-zq", "zelda"]) == []
    zelda.refresh_from_db()
    assert zelda.email == f"deleted-{zelda.pk}@deleted.invalid"
    assert zelda.display_name == "Deleted member" and not zelda.is_active and not zelda.has_usable_password()
    assert zelda.anonymized_at is not None and zelda.country == "" and zelda.external_id is None
    assert authenticate(username=EMAIL, password="pw-for-tests-123") is None
    # The ledger stays, attached to the anonymised row.
    assert Order.objects.aggregate(s=Sum("amount_paid"))["s"] == total_before
    assert Order.objects.filter(member=zelda).aggregate(s=Sum("amount_paid"))["s"] == member_total_before
    assert Event.objects.filter(member=zelda).count() == events_before
    assert not Event.objects.filter(member=zelda).exclude(properties={}).exists()
    # Live subscription canceled at once.
    sub = Subscription.objects.get(member=zelda)
    assert sub.status == Subscription.Status.CANCELED and sub.ended_at is not None and result.subscriptions_canceled == 1
    # Out of scores, segments, campaigns, recommendations.
    for model in (EngagementScore, SegmentAssignment, PropensityScore, RecommendationSet, CampaignAssignment):
        assert not model.objects.filter(member=zelda).exists(), model
    assert not Review.objects.filter(member=zelda).exists()
    # Their helpful votes came off others' reviews.
    for pk, count in others_reviews:
        assert Review.objects.get(pk=pk).helpful_count == count - 1
    log = AuditLog.objects.get(action="member_deleted", target_member_id=zelda.pk)
    assert log.actor == charlie
    assert EMAIL not in json.dumps(log.details)


def test_deletion_leaves_other_members_alone(zelda, bob):
    build_history(zelda, size=1, other=bob)
    bob_orders = Order.objects.filter(member=bob).count()
    member_delete(member=zelda, actor=zelda)
    bob.refresh_from_db()
    assert bob.is_active and bob.email == "bob@example.com"
    assert Review.objects.filter(member=bob).count() == 1
    assert Order.objects.filter(member=bob).count() == bob_orders


def test_deletion_keeps_other_members_comments_under_the_deleted_members_posts(zelda, bob):
    post = Post.objects.create(author=zelda, title=f"Hi from {NAME}", body=f"I am {NAME}", body_html="<p>x</p>")
    bobs_comment = Comment.objects.create(post=post, author=bob, body="Welcome!")
    zeldas_reply = Comment.objects.create(post=post, author=zelda, parent=bobs_comment, body=f"Thanks, {EMAIL}")
    bobs_reply = Comment.objects.create(post=post, author=bob, parent=zeldas_reply, body="Any time")
    bobs_post = Post.objects.create(author=bob, title="Bob's", body="b")
    zeldas_comment = Comment.objects.create(post=bobs_post, author=zelda, body=NAME)
    bobs_like = Reaction.objects.create(member=bob, post=post)
    zeldas_like = Reaction.objects.create(member=zelda, post=bobs_post)

    result = member_delete(member=zelda, actor=zelda)

    # Zelda's post and comments stay in their threads, detached and without her words ...
    post.refresh_from_db()
    assert (post.author_id, post.title, post.body, post.body_html) == (None, "", "", "")
    for comment in (zeldas_reply, zeldas_comment):
        comment.refresh_from_db()
        assert (comment.author_id, comment.body, comment.body_html) == (None, "", "")
    # ... and everything Bob wrote under them is untouched; Bob's like stays, Zelda's goes.
    assert Comment.objects.get(pk=bobs_comment.pk).body == "Welcome!"
    assert Comment.objects.get(pk=bobs_reply.pk).author == bob
    assert Reaction.objects.filter(pk=bobs_like.pk).exists() and not Reaction.objects.filter(pk=zeldas_like.pk).exists()
    assert "community.Post.author" not in result.deleted and "community.Comment.author" not in result.deleted
    details = AuditLog.objects.get(action="member_deleted", target_member_id=zelda.pk).details
    assert details["community_anonymised"] == {"posts": 1, "comments": 2}


# ---- pages



def test_my_data_download_is_a_zip(client, zelda):
    client.force_login(zelda)
    assert client.get(reverse("members:my_data")).status_code == 200
    response = client.get(reverse("members:my_data_download"))
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert json.loads(archive.read("data.json"))["member"]["email"] == EMAIL


def test_delete_needs_the_password_then_anonymises_and_logs_out(client, zelda):
    client.force_login(zelda)
    url = reverse("members:my_data_delete")
    assert client.post(url, {"password": "wrong", "confirm": "1"}).status_code == 400
    zelda.refresh_from_db()
    assert zelda.is_active
    response = client.post(url, {"password": "pw-for-tests-123", "confirm": "1"})
    assert response.status_code == 302
    zelda.refresh_from_db()
    assert not zelda.is_active and zelda.email.endswith("@deleted.invalid")
    assert client.get(reverse("members:my_data")).status_code == 302  # logged out
    assert AuditLog.objects.get(action="member_deleted").actor_id == zelda.pk


def test_admin_actions_export_and_anonymise(staff_client, zelda, charlie):
    url = reverse("admin:members_user_changelist")
    export = staff_client.post(url, {"action": "export_member_data", "_selected_action": [zelda.pk]})
    assert export["Content-Type"] == "application/zip"
    confirm = staff_client.post(url, {"action": "delete_member", "_selected_action": [zelda.pk]})
    assert confirm.status_code == 200 and EMAIL.encode() in confirm.content
    zelda.refresh_from_db()
    assert zelda.is_active  # nothing happens before confirmation
    done = staff_client.post(url, {"action": "delete_member", "_selected_action": [zelda.pk], "confirm": "yes"})
    assert done.status_code == 302
    zelda.refresh_from_db()
    assert zelda.anonymized_at is not None
    assert AuditLog.objects.filter(action="member_deleted", actor=charlie, target_member_id=zelda.pk).exists()
    assert AuditLog.objects.filter(action="member_exported", actor=charlie, target_member_id=zelda.pk).exists()


def test_audit_log_admin_is_read_only(staff_client, zelda):
    member_export(member=zelda)
    log = AuditLog.objects.get()
    assert staff_client.get(reverse("admin:members_auditlog_changelist")).status_code == 200
    assert staff_client.post(reverse("admin:members_auditlog_delete", args=[log.pk]), {"post": "yes"}).status_code == 403
    assert AuditLog.objects.filter(pk=log.pk).exists()
