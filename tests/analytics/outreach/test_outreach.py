"""Email outreach: editable copy (validated variables, preview, test send), RFC 8058 one-click unsubscribe per
category without login, newsletters through the exactly-once path, the bounce/complaint webhook, the digest."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from analytics.models import EmailSuppression, MessageLog, MessageTemplate, Newsletter, ReminderRule
from analytics.outreach import campaigns, digest, reminders
from analytics.outreach.newsletter import newsletter_send
from analytics.outreach.templates import template_problems
from community.models import Comment, Post
from members.models import User
from tests.analytics.outreach.test_campaigns import _campaign, _scored_members
from tests.members.factories import SubscriptionFactory, UserFactory

SECRET = "whsec-test"


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = "https://club.example.com"
    settings.EMAIL_WEBHOOK_SECRET = SECRET


def _reminder_for(member, capture):
    ReminderRule.objects.get_or_create(name="7 days", days_before=7)
    now = timezone.now()
    SubscriptionFactory(member=member, current_period_start=now - timedelta(days=20),
                        current_period_end=now + timedelta(days=5))
    with capture(execute=True):
        reminders.reminders_send()


# ---------------------------------------------------------------------------------------------------- copy

def test_a_template_edit_changes_the_next_email(db, django_capture_on_commit_callbacks):
    first, second = UserFactory(display_name="Ann"), UserFactory(display_name="Bo")
    _reminder_for(first, django_capture_on_commit_callbacks)
    assert "membership" in mail.outbox[-1].subject and "Ann" in mail.outbox[-1].body

    MessageTemplate.objects.create(kind=MessageLog.Kind.RENEWAL_REMINDER, language="en",
                                   subject="{{ member.name }}, {{ days_left }} days left on {{ tier.name }}",
                                   text_body="Renew here: {{ renew_url }}\n{{ unsubscribe_url }}",
                                   html_body="<p>Renew <a href='{{ renew_url }}'>here</a></p>")
    _reminder_for(second, django_capture_on_commit_callbacks)
    email = mail.outbox[-1]
    assert email.to == [second.email]
    assert email.subject.startswith("Bo, 5 days left on")
    assert email.body.startswith("Renew here: https://club.example.com/")
    assert "Renew <a href='https://club.example.com/" in email.alternatives[0][0]


def test_the_chinese_copy_is_used_for_chinese_members_only(db, django_capture_on_commit_callbacks):
    MessageTemplate.objects.create(kind=MessageLog.Kind.RENEWAL_REMINDER, language="zh-hans",
                                   subject="{{ member.name }}，续费提醒", text_body="{{ renew_url }}")
    _reminder_for(UserFactory(display_name="李雷", preferred_language="zh-hans"), django_capture_on_commit_callbacks)
    assert mail.outbox[-1].subject == "李雷，续费提醒"
    _reminder_for(UserFactory(display_name="Ann"), django_capture_on_commit_callbacks)
    assert "续费提醒" not in mail.outbox[-1].subject


@pytest.mark.parametrize("source, problem", [
    ("Hi {{ member.name }} {{ password }}", "unknown variable 'password'"),
    ("{% if secret %}x{% endif %}", "unknown variable 'secret'"),
    ("{{ coupon.code }}", "unknown variable 'coupon'"),  # a campaign variable, not a reminder's
    ("{{ tier.name|default:other }}", "unknown variable 'other'"),
    ("{% load static %}", "tag '{% load %}' is not allowed"),
    ("{% include 'x.html' %}", "tag '{% include %}' is not allowed"),
    ("{% if %}", "template error"),
])
def test_a_bad_variable_or_tag_is_refused(source, problem):
    assert any(problem in p for p in template_problems(MessageLog.Kind.RENEWAL_REMINDER, source))


def test_known_variables_loops_and_filters_pass():
    source = ("{% for b in recap.benefits_used %}{{ b|upper }}{{ forloop.counter }}{% empty %}-{% endfor %}"
              "{% if days_left > 1 %}{{ period_end|date:'Y-m-d' }}{% endif %}")
    assert template_problems(MessageLog.Kind.RENEWAL_REMINDER, source) == []


def test_the_admin_refuses_a_bad_variable_previews_and_sends_a_test(admin_client, admin_user):
    add = reverse("admin:analytics_messagetemplate_add")
    refused = admin_client.post(add, {"kind": "renewal_reminder", "language": "en", "subject": "{{ nope }}",
                                      "text_body": "x", "html_body": ""})
    assert refused.status_code == 200 and "unknown variable" in refused.content.decode()
    assert not MessageTemplate.objects.exists()

    saved = admin_client.post(add, {"kind": "renewal_reminder", "language": "en",
                                    "subject": "{{ days_left }} days", "text_body": "Hi {{ member.name }}",
                                    "html_body": "<b>{{ tier.name }}</b>"})
    assert saved.status_code == 302
    template = MessageTemplate.objects.get()
    page = admin_client.get(reverse("admin:analytics_messagetemplate_change", args=[template.pk])).content.decode()
    assert "7 days" in page and "Hi Ann" in page and "{{ renew_url }}" in page  # preview + the variables list

    mail.outbox.clear()
    admin_client.post(reverse("admin:analytics_messagetemplate_changelist"),
                      {"action": "send_me_a_test", "_selected_action": [template.pk]})
    assert [m.to for m in mail.outbox] == [[admin_user.email]] and mail.outbox[0].subject == "[TEST] 7 days"


# ---------------------------------------------------------------------------------------------------- unsubscribe

def _one_click(client, email):
    header = email.extra_headers["List-Unsubscribe"]
    assert header.startswith("<https://club.example.com/") and header.endswith(">")
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = header[1:-1].removeprefix("https://club.example.com")
    assert client.get(path).status_code == 200  # a GET (link scanners) changes nothing
    return client.post(path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")


def test_a_reminder_has_both_headers_and_one_click_works_without_login(client, db, django_capture_on_commit_callbacks):
    member = UserFactory()
    _reminder_for(member, django_capture_on_commit_callbacks)
    email = mail.outbox[-1]
    assert "/accounts/unsubscribe/" in email.body
    assert User.objects.get(pk=member.pk).reminders_opt_in
    assert _one_click(client, email).status_code == 200
    member.refresh_from_db()
    assert not member.reminders_opt_in and member.marketing_opt_in  # only the reminders category


def test_a_campaign_offer_has_both_headers_and_one_click_leaves_offers(client, db, django_capture_on_commit_callbacks):
    _scored_members(20, probability=0.1)
    campaign = _campaign(holdout_share=0.01)  # the smallest holdout admin allows: nearly everyone gets the offer
    with django_capture_on_commit_callbacks(execute=True):
        campaigns.campaign_run(campaign=campaign)
    assert mail.outbox
    email = mail.outbox[0]
    assert _one_click(client, email).status_code == 200
    assert not User.objects.get(email=email.to[0]).marketing_opt_in


def test_a_newsletter_and_a_digest_carry_the_headers_and_dunning_does_not(client, db, django_capture_on_commit_callbacks):
    reader = UserFactory(digest_opt_in=True, newsletter_opt_in=True)
    post = Post.objects.create(author=reader, title="Week notes", body="hi")
    Comment.objects.create(post=post, author=reader, body="first")
    issue = Newsletter.objects.create(subject="News for {{ member.name }}", text_body="Hello {{ unsubscribe_url }}")
    with django_capture_on_commit_callbacks(execute=True):
        newsletter_send(newsletter=issue)
        digest.community_digest_send()
    kinds = {m.subject: m for m in mail.outbox if m.to == [reader.email]}
    news = next(m for s, m in kinds.items() if s.startswith("News for"))
    weekly = next(m for s, m in kinds.items() if "community" in s)
    assert "Week notes" in weekly.body
    assert _one_click(client, weekly).status_code == 200
    reader.refresh_from_db()
    assert not reader.digest_opt_in and reader.newsletter_opt_in
    assert _one_click(client, news).status_code == 200
    reader.refresh_from_db()
    assert not reader.newsletter_opt_in

    from analytics.outreach.suppression import unsubscribe_headers
    assert unsubscribe_headers(member=reader, kind=MessageLog.Kind.DUNNING) == {}


def test_an_unsubscribed_member_gets_no_further_reminders(db, django_capture_on_commit_callbacks):
    member = UserFactory(reminders_opt_in=False)
    _reminder_for(member, django_capture_on_commit_callbacks)
    assert not [m for m in mail.outbox if m.to == [member.email]]
    assert MessageLog.objects.get(member=member).error == "suppressed: unsubscribed from reminders"


def test_a_forged_unsubscribe_link_is_refused(client, db):
    assert client.post("/accounts/unsubscribe/not-a-token/").status_code == 400


# ---------------------------------------------------------------------------------------------------- newsletters

def test_a_newsletter_goes_once_to_its_segment(db, django_capture_on_commit_callbacks):
    from analytics.models import SegmentAssignment, SegmentRun

    inside, outside = UserFactory(newsletter_opt_in=True), UserFactory(newsletter_opt_in=True)
    opted_out = UserFactory()  # the newsletter is opt-in: never ticked, never sent
    run = SegmentRun.objects.create(as_of=timezone.now(), k=2)
    for member, label in ((inside, "loyal"), (outside, "dormant"), (opted_out, "loyal")):
        SegmentAssignment.objects.create(run=run, member=member, as_of=run.as_of, cluster=0, label=label)
    issue = Newsletter.objects.create(subject="Hello loyal", text_body="Thanks, {{ member.name }}", segment="loyal")
    with django_capture_on_commit_callbacks(execute=True):
        assert newsletter_send(newsletter=issue) == 1
        assert newsletter_send(newsletter=issue) == 0  # a second click queues nothing
    assert [m.to for m in mail.outbox] == [[inside.email]]
    issue.refresh_from_db()
    assert issue.status == Newsletter.Status.SENT and issue.recipients == 1


# ---------------------------------------------------------------------------------------------------- webhook

def _generic(client, payload, secret=SECRET):
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post("/hooks/email/generic/", data=body, content_type="application/json",
                       headers={"X-Signature": signature})


def test_a_bounce_suppresses_further_sends(client, db, django_capture_on_commit_callbacks):
    member = UserFactory()
    response = _generic(client, {"type": "bounce", "bounce_type": "hard", "email": member.email.upper()})
    assert response.status_code == 200 and response.json() == {"suppressed": 1, "ignored": 0}
    assert _generic(client, {"type": "bounce", "email": member.email}).json() == {"suppressed": 0, "ignored": 1}

    _reminder_for(member, django_capture_on_commit_callbacks)
    assert not [m for m in mail.outbox if m.to == [member.email]]
    assert MessageLog.objects.get(member=member).error == "suppressed: address suppressed (bounce)"


def test_the_webhook_checks_its_signature_and_format(client, db):
    assert _generic(client, {"type": "bounce", "email": "a@b.c"}, secret="wrong").status_code == 401
    assert _generic(client, {"type": "spam", "email": "a@b.c"}).status_code == 400
    assert _generic(client, {"type": "bounce", "bounce_type": "soft", "email": "a@b.c"}).json()["ignored"] == 1
    assert client.post("/hooks/email/nobody/", data=b"{}", content_type="application/json").status_code == 404
    assert client.get("/hooks/email/generic/").status_code == 405
    assert not EmailSuppression.objects.exists()


def test_postmark_bounces_and_complaints_with_basic_auth(client, db, settings):
    def post(payload, password=SECRET):
        auth = base64.b64encode(f"postmark:{password}".encode()).decode()
        return client.post("/hooks/email/postmark/", data=json.dumps(payload), content_type="application/json",
                           headers={"Authorization": f"Basic {auth}"})

    assert post({"RecordType": "Bounce", "Type": "HardBounce", "Email": "x@example.com"}, "nope").status_code == 401
    assert post({"RecordType": "Bounce", "Type": "HardBounce", "Email": "x@example.com"}).json()["suppressed"] == 1
    assert post({"RecordType": "Bounce", "Type": "SoftBounce", "Email": "y@example.com"}).json()["ignored"] == 1
    assert post({"RecordType": "SpamComplaint", "Email": "z@example.com"}).json()["suppressed"] == 1
    assert dict(EmailSuppression.objects.values_list("email", "reason")) == {"x@example.com": "bounce",
                                                                              "z@example.com": "complaint"}
    settings.EMAIL_WEBHOOK_SECRET = ""
    assert post({"RecordType": "SpamComplaint", "Email": "q@example.com"}).status_code == 401


# ---------------------------------------------------------------------------------------------------- digest

def test_the_digest_goes_weekly_to_members_who_opted_in(db, django_capture_on_commit_callbacks):
    reader, other = UserFactory(digest_opt_in=True), UserFactory()
    Post.objects.create(author=other, title="Hello", body="x")
    with django_capture_on_commit_callbacks(execute=True):
        assert digest.community_digest_send() == 1
        assert digest.community_digest_send() == 0  # the same ISO week
    assert [m.to for m in mail.outbox] == [[reader.email]]


def test_every_non_transactional_kind_has_an_unsubscribe_category():
    from analytics.outreach.suppression import CATEGORY_BY_KIND

    transactional = {MessageLog.Kind.DUNNING, MessageLog.Kind.RECEIPT, MessageLog.Kind.OTHER}
    assert set(MessageLog.Kind.values) - transactional == set(CATEGORY_BY_KIND)
