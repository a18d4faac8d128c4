"""The learner's journey in a real browser (Debian's chromium driven by Playwright) against the live server.

A new learner signs up, browses, buys a course with a coupon, completes a lesson, reviews the course, posts and gets
a reply notification (a second member replies in another browser), copies her invite link, which a friend signs up
through in a third browser, switches to Chinese, subscribes to a tier and cancels with the save offer shown. Screenshots at desktop and phone width go to test-artifacts/screenshots/.
"""
from __future__ import annotations

import os
import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("chromium is not installed at /usr/bin/chromium (make chromium installs it)", allow_module_level=True)

# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls there unless told it is fine.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from playwright.sync_api import Page, expect, sync_playwright

from community import services as community_services
from members.models import (
    Benefit,
    Coupon,
    Order,
    Referral,
    ReferralProgram,
    RetentionOffer,
    Review,
    Subscription,
    User,
)
from tests.members.factories import (
    BenefitFactory,
    CouponFactory,
    CourseFactory,
    LessonFactory,
    TierFactory,
    UserFactory,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
DOCS_SHOTS = ROOT / "docs" / "screenshots"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run"]


def shoot(page: Page, name: str) -> None:
    """Desktop (1280) and phone (360) screenshots of the current page."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, label in ((1280, "desktop"), (360, "phone")):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.fixture
def catalogue(db):
    python = CourseFactory(title="Python for Analysts", title_zh="分析师的 Python", slug="python-for-analysts",
                           topic="data", price=Decimal("200.00"), summary="From spreadsheets to pandas.",
                           audience="Analysts who know Excel and want to automate their reports.")
    LessonFactory(course=python, position=1, title="Setting up", body="Install Python and open a notebook.",
                  is_preview=True)
    LessonFactory(course=python, position=2, title="DataFrames", body="Load a CSV and look around.")
    for n in range(3):
        CourseFactory(title=f"Data course {n}", topic="data", price=Decimal("99.00") + n, tags=["sql"])
    CourseFactory(title="Watercolour basics", topic="art", price=Decimal("59.00"), tags=["painting"])
    CouponFactory(code="WELCOME20", percent_off=Decimal(20))
    gold = TierFactory(name="Gold", slug="gold", monthly_price=Decimal("49.00"), yearly_price=Decimal("490.00"))
    BenefitFactory(tier=gold, kind=Benefit.Kind.ALL_COURSES)
    BenefitFactory(tier=gold, kind=Benefit.Kind.COMMUNITY)
    offer = RetentionOffer.objects.create(name="Stay for 30% less", kind="discount", percent_off=Decimal(30),
                                          headline="Stay for 30% less")
    offer.tiers.add(gold)
    ReferralProgram.objects.create(friend_percent_off=Decimal(15), reward_percent_off=Decimal(20))
    bob = UserFactory(email="bob@example.com", display_name="Bob")
    staff = UserFactory(email="coach@example.com", display_name="Coach Lin", is_staff=True)
    welcome = community_services.post_create(
        author=staff, title="Welcome to the community",
        body="Introduce yourself below and tell us **what you want to learn** this month.")
    community_services.post_pin(post=welcome, member=staff)
    community_services.post_create(author=bob, title="My pandas cheat sheet", course=python,
                                   body="- `df.head()`\n- `df.describe()`\n- `df.groupby('x').sum()`")
    return python


@pytest.mark.django_db(transaction=True)
def test_learner_journey(live_server, catalogue):
    base = live_server.url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            _journey(browser, base, catalogue)
        finally:
            browser.close()
    if os.environ.get("UPDATE_DOC_SCREENSHOTS"):  # the README's pictures; a plain test run leaves docs/ alone
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        for name in ("learner-home-desktop", "course-page-desktop", "community-desktop"):
            shutil.copyfile(SHOTS / f"{name}.png", DOCS_SHOTS / f"{name}.png")


def _journey(browser, base: str, course) -> None:
    # Clipboard access so the invite page's "Copy link" can be checked.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US",
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.set_default_timeout(15000)
    page.on("console", lambda m: print("CONSOLE", m.text))

    # Anonymous home: catalogue and tier comparison.
    page.goto(f"{base}/")
    expect(page.locator("table.compare")).to_contain_text("All-course access")
    shoot(page, "anonymous-home")

    # Sign up.
    page.goto(f"{base}/accounts/signup/")
    page.fill("#id_email", "nora@example.com")
    page.fill("#id_display_name", "Nora")
    page.fill("#id_password", "a-long-passphrase-2024")
    page.select_option("#id_preferred_language", "en")
    page.click("form.form button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Welcome back, Nora")
    nora = User.objects.get(email="nora@example.com")

    # Browse: live search swaps the results and pushes the URL.
    page.goto(f"{base}/courses/")
    assert page.evaluate("typeof htmx") == "object", "htmx did not load"
    page.fill("#id_q", "Python")
    expect(page.locator("#results")).to_contain_text("1 course")
    expect(page).to_have_url(re.compile(r"q=Python"))
    # Leaving the search box does not search again (typing did): that answer, arriving after a click on a result,
    # pushed the catalogue's URL over the course page being opened. The other filters search when they change.
    searches: list[str] = []
    page.on("request", lambda r: searches.append(r.url) if r.headers.get("hx-request") else None)
    page.locator("h1").click()
    page.wait_for_timeout(700)
    assert searches == [], searches
    page.select_option("#id_sort", "title")
    expect(page).to_have_url(re.compile(r"sort=title"))
    assert len(searches) == 1 and "q=Python" in searches[0]
    expect(page.locator("#results")).to_contain_text("1 course")
    shoot(page, "catalogue")
    page.click("#results a:has-text('Python for Analysts')")
    expect(page.locator("h1")).to_have_text("Python for Analysts")
    expect(page.locator("body")).to_contain_text("Analysts who know Excel")
    shoot(page, "course-page")

    # Buy with a coupon: the price changes live, then the receipt.
    page.click("text=Buy this course")
    expect(page.locator("#quote-total")).to_have_text("¥200.00")
    page.fill("#id_coupon", "WELCOME20")
    expect(page.locator("#quote-total")).to_have_text("¥160.00")
    expect(page.locator("#quote")).to_contain_text("WELCOME20 applied")
    shoot(page, "checkout")
    page.select_option("#id_payment_token", "local:ok")
    page.click("#pay-button")
    expect(page.locator("h1")).to_contain_text("Receipt")
    expect(page.locator("#order-status")).to_have_text("Paid")
    order = Order.objects.get(member=nora)
    assert order.amount_paid == Decimal("160.00") and order.coupon.code == "WELCOME20"

    # Learn: open a lesson, mark it complete through htmx.
    page.goto(f"{base}/courses/python-for-analysts/lessons/1/")
    page.click("#lesson-progress button[type=submit]")
    expect(page.locator("#lesson-progress")).to_contain_text("Lesson completed")
    expect(page.locator("#lesson-progress [role=progressbar]")).to_have_attribute("aria-valuenow", "50")
    shoot(page, "lesson")

    # Review the course she bought: the form posts through htmx and the summary updates in place.
    page.goto(f"{base}/courses/python-for-analysts/")
    page.check("#reviews input[name=rating][value='5']")
    page.fill("#review-body", "Clear and practical: my first report is automated.")
    page.click("#reviews form button[type=submit]")
    expect(page.locator("#reviews .rating-summary")).to_contain_text("5.0")
    expect(page.locator("#reviews .review-list")).to_contain_text("my first report is automated")
    expect(page.locator("#reviews legend")).to_have_text("Edit your review")
    review = Review.objects.get(member=nora, course=course)
    assert review.rating == 5 and not review.is_hidden
    shoot(page, "course-review")
    # The catalogue's "Top rated" sort puts it first and shows the average on its card.
    page.goto(f"{base}/courses/?sort=rating")
    expect(page.locator("#results .card").first).to_contain_text("Python for Analysts")
    expect(page.locator("#results .card").first).to_contain_text("★ 5.0 (1)")

    # Home now shows "continue" and the htmx-loaded recommendations.
    page.goto(f"{base}/")
    expect(page.locator("#continue-h + p")).to_contain_text("DataFrames")
    expect(page.locator("#recommendations .card").first).to_be_visible()
    expect(page.locator("#recommendations")).to_contain_text("Popular on the platform")
    shoot(page, "learner-home")

    # Community: post, then a first comment of her own.
    page.goto(f"{base}/community/")
    page.click("details.panel summary")
    page.fill("#id_title", "How do you read Excel files?")
    page.fill("#id_body", "I tried **pandas** but the dates look odd. <script>alert(1)</script>")
    page.click("details.panel button[type=submit]")
    expect(page.locator("h1")).to_have_text("How do you read Excel files?")
    assert page.locator(".prose script").count() == 0
    page.fill("#id_body", "Here is my sample file.")
    page.click("#comment-form button[type=submit]")
    expect(page.locator(".comment")).to_contain_text("Here is my sample file.")
    post_url = page.url.split("#")[0]

    # A second member replies in another browser.
    bob_context = browser.new_context(viewport={"width": 1280, "height": 900})
    bob = bob_context.new_page()
    bob.goto(f"{base}/accounts/login/")
    bob.fill("#id_username", "bob@example.com")
    bob.fill("#id_password", "pw-for-tests-123")
    bob.click("form.form button[type=submit]")
    bob.goto(post_url)
    bob.click(".comment details summary")
    bob.fill(".comment details textarea", "Use parse_dates=['date'] @Nora")
    bob.click(".comment details button[type=submit]")
    expect(bob.locator(".replies")).to_contain_text("parse_dates")
    bob_context.close()

    page.goto(f"{base}/community/")
    expect(page.locator("#notification-count .badge")).to_be_visible()
    expect(page.locator("#posts .pinned")).to_contain_text("Welcome to the community")
    shoot(page, "community-feed")
    page.click("#notification-count")
    expect(page.locator("#notification-list")).to_contain_text("Bob replied to you")
    shoot(page, "notifications")
    page.click("#notification-list button[name=go]")
    expect(page.locator(".replies")).to_contain_text("parse_dates")
    page.click("#reactions button[value=like]")
    expect(page.locator("#reactions button[value=like]")).to_have_attribute("aria-pressed", "true")
    shoot(page, "community")

    # Invite friends, from the nav: her personal link, copied to the clipboard.
    page.click("nav.nav a:has-text('Invite friends')")
    expect(page.locator("h1")).to_have_text("Invite friends")
    invite_url = page.locator("#invite-url").input_value()
    assert re.fullmatch(rf"{re.escape(base)}/r/[A-Z0-9]+/", invite_url), invite_url
    page.click("#copy-invite")
    expect(page.locator("#copy-invite")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == invite_url
    expect(page.locator("main")).to_contain_text("Your friend gets 15% off their first purchase")
    expect(page.locator("table.data")).to_contain_text("No one has joined through your link yet.")
    shoot(page, "invite")

    # A friend opens the link in another browser and signs up through it.
    friend_context = browser.new_context(viewport={"width": 360, "height": 800}, locale="en-US")
    friend = friend_context.new_page()
    friend.goto(invite_url)
    expect(friend).to_have_url(re.compile(r"/accounts/signup/"))
    friend.fill("#id_email", "omar@example.com")
    friend.fill("#id_display_name", "Omar")
    friend.fill("#id_password", "another-long-passphrase-7")
    friend.select_option("#id_preferred_language", "en")
    friend.click("form.form button[type=submit]")
    expect(friend.locator("h1")).to_contain_text("Omar")
    friend_context.close()
    referral = Referral.objects.get(referred__email="omar@example.com")
    assert referral.referrer == nora and referral.status == Referral.Status.SIGNED_UP
    assert referral.welcome_coupon is not None and referral.welcome_coupon.percent_off == 15

    # Her invite page now lists the friend.
    page.reload()
    expect(page.locator("table.data")).to_contain_text("Omar")
    expect(page.locator("table.data")).to_contain_text("Signed up")

    # Switch to Chinese.
    page.select_option("#lang-select", "zh-hans")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.locator("nav.nav")).to_contain_text("课程")

    # Subscribe to Gold and cancel: the save offer comes first.
    page.goto(f"{base}/membership/tiers/")
    shoot(page, "tiers")
    page.click("a[href='/checkout/membership/gold/']")
    page.click("#pay-button")
    expect(page.locator("#order-status")).to_be_visible()
    sub = Subscription.objects.get(member=nora)
    assert sub.status == Subscription.Status.ACTIVE
    page.goto(f"{base}/membership/")
    page.click("a[href='/membership/cancel/']")
    page.check("input[name=reason][value=too_expensive]")
    page.click("button[value=survey]")
    expect(page.locator("#save-offer")).to_contain_text("30%")
    shoot(page, "save-offer")
    sub.refresh_from_db()
    assert not sub.cancel_at_period_end
    page.click("#confirm-cancel")
    expect(page.locator("#membership-card")).to_be_visible()
    sub.refresh_from_db()
    assert sub.cancel_at_period_end and sub.cancellation_reason == "too_expensive"
    shoot(page, "membership-cancelled")
    assert not Coupon.objects.filter(assigned_member=nora, source="retention").exists()
    context.close()
