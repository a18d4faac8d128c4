"""The site's own pages satisfy its Content-Security-Policy: chromium reports no CSP violation on the pages a
learner and a staff member open (issue 13 item 12). A violation shows up as a console error and a
`securitypolicyviolation` event; both are collected."""
from __future__ import annotations

import os
from decimal import Decimal

import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("chromium is not installed at /usr/bin/chromium (make chromium installs it)", allow_module_level=True)
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from django.conf import settings  # noqa: E402
from django.test import Client  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from community import services as community_services  # noqa: E402
from tests.members.factories import CourseFactory, LessonFactory, StaffFactory, TierFactory, UserFactory  # noqa: E402

pytestmark = pytest.mark.browser
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
WATCH = """document.addEventListener('securitypolicyviolation', e => {
  (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI); });"""


def _session_cookie(user, base: str) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    return {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
            "url": base}


@pytest.mark.django_db(transaction=True)
def test_pages_raise_no_csp_violations(live_server):
    course = CourseFactory(title="Python for Analysts", slug="python-for-analysts", price=Decimal("200.00"))
    LessonFactory(course=course, position=1, title="Setting up", body="Install Python.", is_preview=True)
    TierFactory(name="Gold", slug="gold")
    alice = UserFactory(email="alice@example.com")
    staff = StaffFactory(email="charlie@example.com", is_superuser=True)
    post = community_services.post_create(author=alice, title="Hello", body="**hi** there")
    base = live_server.url
    learner_pages = ["/", "/courses/", f"/courses/{course.slug}/", f"/courses/{course.slug}/lessons/1/",
                     "/membership/tiers/", "/community/", post.get_absolute_url(), "/invite/", "/orders/"]
    staff_pages = ["/staff/", "/admin/"]
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
                    violations.extend(f"{path}: {v}" for v in page.evaluate("window.__csp || []"))
                context.close()
        finally:
            browser.close()
    assert violations == []
