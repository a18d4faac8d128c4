"""Every staff report page in a real browser on a small demo platform, with a screenshot of each.

The data comes from the demo seeder (`seed_demo`, small numbers) and the nightly pipeline (scores, segments, models,
recommendations), so the pages show what `make run` shows. Screenshots: test-artifacts/screenshots/reports/; the
overview is copied to docs/screenshots/reports-overview.png and the revenue page (MRR movements) to
docs/screenshots/revenue-mrr-movements.png for the README when UPDATE_DOC_SCREENSHOTS=1.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("chromium is not installed at /usr/bin/chromium (make chromium installs it)", allow_module_level=True)

# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls there unless told it is fine.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from django.core.management import call_command
from django.core.management.base import CommandError
from playwright.sync_api import expect, sync_playwright

from members.models import User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots" / "reports"
DOCS_SHOTS = ROOT / "docs" / "screenshots"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run"]
PAGES = [
    ("overview", "/staff/"),
    ("cohorts", "/staff/cohorts/"),
    ("repurchase", "/staff/repurchase/"),
    ("churn", "/staff/churn/"),
    ("models", "/staff/models/"),
    ("segments", "/staff/segments/"),
    ("campaigns", "/staff/campaigns/"),
    ("revenue", "/staff/revenue/"),
]
PASSWORD = "reports-browser-pass-1"


def _seed() -> str:
    """The demo seeder and nightly pipeline when they exist; otherwise a tiny factory-built ledger."""
    try:
        call_command("seed_demo", members=150, months=12, seed=7, no_progress=True, verbosity=0)
    except CommandError as exc:
        if "Unknown command" not in str(exc):
            raise
        from tests.members.factories import OrderFactory, SubscriptionFactory

        for _ in range(5):
            SubscriptionFactory()
            OrderFactory()
        return "factories"
    try:
        call_command("run_nightly_pipeline", verbosity=0)
    except CommandError as exc:
        if "Unknown command" not in str(exc):
            raise
    return "demo"


def test_every_report_page_renders_in_a_browser(live_server):
    source = _seed()
    User.objects.create_superuser(email="reports-staff@example.com", password=PASSWORD)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{live_server.url}/accounts/login/?next=/staff/")
        page.fill("input[name=username]", "reports-staff@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.click("form.form button[type=submit]")
        page.wait_for_url(f"{live_server.url}/staff/")

        for name, path in PAGES:
            response = page.goto(f"{live_server.url}{path}")
            assert response is not None and response.status == 200, f"{name}: {response and response.status}"
            expect(page.locator("#report")).to_be_visible()
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

        # On the overview, real figures: active and paying members are numbers, not "—", and charts are drawn.
        page.goto(f"{live_server.url}/staff/")
        if source == "demo":
            active = page.locator('[data-figure="active_members"] .value').inner_text()
            assert active.replace(",", "").isdigit() and int(active.replace(",", "")) > 0
            assert page.locator('[data-figure="mrr"] .value').inner_text() != "—"
        assert page.locator("#report svg").count() >= 10

        # The htmx filter: picking a start date swaps only #report and pushes the filter into the URL.
        page.fill("input[name=start]", "2020-01-01")
        page.locator("input[name=start]").dispatch_event("change")
        page.wait_for_url("**start=2020-01-01**")
        expect(page.locator("#report")).to_contain_text("2020-01-01")
        assert page.locator("form.filters").count() == 1  # the form was not duplicated by the swap
        page.goto(f"{live_server.url}/staff/")
        page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)
        browser.close()

    if os.environ.get("UPDATE_DOC_SCREENSHOTS"):  # the README's picture; a plain test run leaves docs/ alone
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHOTS / "overview.png", DOCS_SHOTS / "reports-overview.png")
        shutil.copyfile(SHOTS / "revenue.png", DOCS_SHOTS / "revenue-mrr-movements.png")
    for name, _ in PAGES:
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
