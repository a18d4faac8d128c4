"""The site's own pages satisfy its Content-Security-Policy: chromium reports no CSP violation on the pages a
learner and a staff member open (issue 13 item 12). A violation shows up as a console error and a
`securitypolicyviolation` event; both are collected."""
from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("chromium is not installed at /usr/bin/chromium (make chromium installs it)", allow_module_level=True)
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from django.conf import settings  # noqa: E402
from django.core.files import File  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from community import services as community_services  # noqa: E402
from members.models import (  # noqa: E402
    Certificate,
    Enrollment,
    LessonMediaKind,
    Quiz,
    QuizChoice,
    QuizQuestion,
)
from tests.members.factories import (  # noqa: E402
    CourseFactory,
    EnrollmentFactory,
    LessonFactory,
    StaffFactory,
    TierFactory,
    UserFactory,
)

pytestmark = pytest.mark.browser
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--mute-audio"]
CLIP = Path(__file__).resolve().parents[2] / "members" / "demo" / "media" / "lesson-video.webm"
READY = {"/api/docs/": ".swagger-ui .info .title", "/api/redoc/": "#redoc-container h1, redoc h1",
         "/staff/revenue/": "#report svg"}
WATCH = """document.addEventListener('securitypolicyviolation', e => {
  (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI); });"""


def _session_cookie(user, base: str) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    return {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
            "url": base}


@pytest.mark.django_db(transaction=True)
def test_pages_raise_no_csp_violations(live_server, settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    # A small demo ledger so the staff charts (revenue's stacked MRR bars included) draw real bars and ticks.
    call_command("seed_demo", members=40, months=3, seed=5, no_progress=True, verbosity=0)
    course = CourseFactory(title="Python for Analysts", slug="python-for-analysts", price=Decimal("200.00"))
    LessonFactory(course=course, position=1, title="Setting up", body="Install Python.", is_preview=True)
    TierFactory(name="Gold", slug="gold")
    alice = UserFactory(email="alice@example.com")
    staff = StaffFactory(email="charlie@example.com", is_superuser=True)
    # The pages the lessons branch added: a video lesson (player script), a quiz lesson, a certificate.
    video_course = CourseFactory(title="Video basics", slug="video-basics-csp")
    video = LessonFactory(course=video_course, position=1, title="Watch the clip", media_kind=LessonMediaKind.VIDEO,
                          body="Watch the short video.")
    with CLIP.open("rb") as handle:
        video.media_file.save("clip.webm", File(handle), save=True)
    quiz_lesson = LessonFactory(course=video_course, position=2, title="Check yourself", body="One question.")
    question = QuizQuestion.objects.create(quiz=Quiz.objects.create(lesson=quiz_lesson, pass_mark=100), position=0,
                                           text="What did the clip show?")
    QuizChoice.objects.create(question=question, text="A test pattern", is_correct=True)
    QuizChoice.objects.create(question=question, text="A cat", is_correct=False)
    EnrollmentFactory(member=alice, course=video_course, source=Enrollment.Source.PURCHASE,
                      enrolled_at=timezone.now() - timedelta(days=1))
    certificate = Certificate.objects.create(member=alice, course=video_course, code="csp-check-certificate-1",
                                             issued_at=timezone.now())
    post = community_services.post_create(author=alice, title="Hello", body="**hi** there")
    base = live_server.url
    learner_pages = ["/", "/courses/", f"/courses/{course.slug}/", f"/courses/{course.slug}/lessons/1/",
                     "/membership/tiers/", "/community/", post.get_absolute_url(), "/invite/", "/orders/",
                     video.get_absolute_url(), quiz_lesson.get_absolute_url(), f"/certificates/{certificate.code}/",
                     "/membership/", "/community/notifications/"]
    staff_pages = ["/staff/", "/staff/revenue/", "/staff/cohorts/", "/staff/repurchase/", "/staff/churn/",
                   "/staff/models/", "/staff/segments/", "/staff/campaigns/", "/admin/", "/admin/analytics/importjob/add/",
                   "/admin/analytics/messagetemplate/", "/api/docs/", "/api/redoc/"]
    violations: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            for user, pages in ((None, ["/accounts/login/", "/accounts/signup/"]), (alice, learner_pages),
                                (staff, staff_pages)):
                context = browser.new_context()
                if user is not None:
                    context.add_cookies([_session_cookie(user, base)])
                context.add_init_script(WATCH)
                page = context.new_page()
                page.on("console", lambda m, pg=page: violations.append(f"{pg.url}: {m.text}")
                        if "Content Security Policy" in m.text else None)
                for path in pages:
                    response = page.goto(base + path)
                    assert response.status < 400, path
                    assert "Content-Security-Policy" in {k.title(): v for k, v in response.headers.items()}
                    page.wait_for_load_state("networkidle")
                    # Pages drawn by script: wait until the script has run (a blocked script would never draw).
                    if path in READY:
                        page.wait_for_selector(READY[path], timeout=20000)
                    violations.extend(f"{path}: {v}" for v in page.evaluate("window.__csp || []"))
                context.close()
        finally:
            browser.close()
    # The one block we want: ReDoc's bundle always loads the Redocly logo from its CDN (hard-coded in the sidecar's
    # redoc.standalone.js; the <img> hides itself on error). We serve nothing from CDNs, so it stays blocked.
    expected = {"/api/redoc/: img-src https://cdn.redoc.ly/redoc/logo-mini.svg",
                f"{base}/api/redoc/: Loading the image 'https://cdn.redoc.ly/redoc/logo-mini.svg' violates the "
                "following Content Security Policy directive: \"img-src 'self' data:\". The action has been blocked."}
    unexpected = [v for v in violations if v not in expected]
    assert unexpected == [], "\n".join(unexpected)
