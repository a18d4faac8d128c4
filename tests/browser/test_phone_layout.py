"""Phones and Chinese in a real browser (Debian's chromium driven by Playwright) on a small demo platform.

At 360, 390 and 414 px wide no key page is wider than the viewport — also with an 80-letter word in a course title
and a post title — and the header is at most 120 px tall. In Chinese no page's main content is more than 30 % Latin
letters (members' posts and comments written in English carry `lang="en"` and are left out; course, lesson and
notification text count). The staff charts' ticks are round numbers, and a learner without history sees no
"for you" on popular courses. The figures are printed and written to test-artifacts/phone-figures.md;
`UPDATE_DOC_SCREENSHOTS=1` copies the Chinese phone screenshots into docs/screenshots/.

    .venv/bin/pytest -p no:cacheprovider -s -m browser tests/browser/test_phone_layout.py
"""
from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("chromium is not installed at /usr/bin/chromium (make chromium installs it)", allow_module_level=True)

# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls there unless told it is fine.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from django.core.management import call_command
from playwright.sync_api import Page, sync_playwright

from community import services as community_services
from community.models import Post
from members.models import Course, Lesson, User
from tests.members.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots" / "phone"
FIGURES = ROOT / "test-artifacts" / "phone-figures.md"
DOCS_SHOTS = ROOT / "docs" / "screenshots"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run"]
WIDTHS = (360, 390, 414)
LONG_WORD = "Donaudampfschifffahrtsgesellschaftskapitaenswitwenrentenversicherungsanstaltsdirektor"[:80]
PASSWORD = "phone-layout-pass-1"
MAX_HEADER = 120
MAX_LATIN = 0.30

# What the page measures: its width, the header's height and, for the main content, Latin letters against CJK
# characters, leaving out parts marked as written in another language (lang not zh); and the controls shorter than 44px.
MEASURE = """() => {
  const main = document.querySelector('main').cloneNode(true);
  main.querySelectorAll('script, style, noscript, [lang]:not([lang^="zh"])').forEach(e => e.remove());
  const text = main.textContent;
  const latin = (text.match(/[A-Za-z]/g) || []).length;
  const cjk = (text.match(/[\\u3400-\\u4dbf\\u4e00-\\u9fff]/g) || []).length;
  // Controls (not links inside sentences) shorter than a 44px tap target.
  const controls = 'button, .button, select, input:not([type=hidden]):not([type=checkbox]):not([type=radio]), '
    + 'textarea, .nav a, .tabs a, .pager a, .bell, .menu-button, .card h3 a, .post h3 a';
  const small = [...document.querySelectorAll(controls)].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden' && r.height < 44;
  }).map(e => (e.id || e.className || e.tagName) + ':' + Math.round(e.getBoundingClientRect().height));
  return {
    small,
    width: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
    viewport: window.innerWidth,
    header: document.querySelector('.site-header').getBoundingClientRect().height,
    latin, cjk,
  };
}"""


def _login(page: Page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.click("main form button[type=submit]")
    page.wait_for_load_state()


@pytest.fixture
def platform(db):
    call_command("seed_demo", members=60, months=3, seed=11, no_progress=True, verbosity=0)
    learner = User.objects.get(email="learner@demo.test")
    staff = User.objects.get(is_staff=True, email="staff@demo.test")
    for user in (learner, staff):
        user.set_password(PASSWORD)
        user.save()
    longest = max(Course.objects.filter(is_published=True), key=lambda c: len(c.title_en or ""))
    newbie = UserFactory(email="newbie@example.com", display_name="新同学", preferred_language="en")
    newbie.set_password(PASSWORD)
    newbie.save()
    return {"learner": learner, "staff": staff, "newbie": newbie, "course": longest,
            "lesson": Lesson.objects.filter(course=longest).order_by("position").first(),
            "post": Post.objects.order_by("-created_at").first()}


def _add_long_words(platform: dict) -> dict:
    """An 80-letter word in a course title and a post title: it must wrap, not widen the page."""
    course = platform["course"]
    course.title_en = f"{LONG_WORD} and a very long course title about {course.title_en}"
    course.title_zh_hans = f"{LONG_WORD} 超长标题：{course.title_zh_hans}"
    course.save()
    post = community_services.post_create(author=platform["learner"], title=f"{LONG_WORD} 一个很长的标题",
                                          body=f"我在学 {LONG_WORD}，有人一起吗？")
    return {**platform, "post": post}


def _pages(platform: dict) -> list[tuple[str, str, str]]:
    """(name, who, path) for the key pages."""
    course, lesson, post = platform["course"], platform["lesson"], platform["post"]
    return [
        ("home", "learner", "/"),
        ("catalogue", "learner", "/courses/"),
        ("course", "learner", course.get_absolute_url()),
        ("lesson", "learner", lesson.get_absolute_url()),
        ("community", "learner", "/community/"),
        ("post", "learner", post.get_absolute_url()),
        ("membership", "learner", "/membership/tiers/"),
        ("my-membership", "learner", "/membership/"),
        ("notifications", "learner", "/community/notifications/"),
        ("checkout", "newbie", "/checkout/membership/plus/"),
        ("staff-overview", "staff", "/staff/"),
        *[(f"staff-{name}", "staff", f"/staff/{name}/")
          for name in ("cohorts", "repurchase", "churn", "models", "segments", "campaigns", "revenue")],
    ]


def _measure_all(browser, base: str, platform: dict, language: str, shots: bool,
                 widths: tuple[int, ...] = WIDTHS) -> dict[tuple[str, int], dict]:
    results: dict[tuple[str, int], dict] = {}
    for who in ("learner", "newbie", "staff"):
        user = platform[who]
        User.objects.filter(pk=user.pk).update(preferred_language=language)
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN" if language != "en" else "en-US")
        context.add_cookies([{"name": "django_language", "value": language, "url": base}])
        page = context.new_page()
        page.set_default_timeout(20000)
        _login(page, base, user.email, PASSWORD)
        for name, owner, path in _pages(platform):
            if owner != who:
                continue
            for width in widths:
                page.set_viewport_size({"width": width, "height": 844})
                page.goto(f"{base}{path}")
                page.wait_for_load_state("networkidle")
                results[(name, width)] = page.evaluate(MEASURE)
                if shots and width == 390:
                    SHOTS.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(SHOTS / f"{name}-{language}-390.png"), full_page=False)
        if shots and who == "learner":
            page.set_viewport_size({"width": 390, "height": 844})
            page.goto(f"{base}/")
            page.click("label.menu-button")
            page.screenshot(path=str(SHOTS / f"menu-{language}-390.png"), full_page=False)
        context.close()
    return results


def test_key_pages_fit_phones_in_both_languages_and_chinese_pages_read_chinese(live_server, platform):
    base = live_server.url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            # The demo as shipped, in Chinese at 390px: how much of each page is still Latin letters.
            demo = _measure_all(browser, base, platform, "zh-hans", shots=True, widths=(390,))
            # Then with an 80-letter word in the longest course title and a post title, both languages, 3 widths.
            long_words = _add_long_words(platform)
            english = _measure_all(browser, base, long_words, "en", shots=False)
            chinese = _measure_all(browser, base, long_words, "zh-hans", shots=False)
            menu = _menu_opens_without_javascript(browser, base)
        finally:
            browser.close()

    def share(m: dict) -> float:
        return m["latin"] / max(1, m["latin"] + m["cjk"])

    lines = ["| page | Latin share, demo in Chinese (Latin / CJK characters) | width at 360 / 390 / 414 px, English | "
             "width at 360 / 390 / 414 px, Chinese | header height at 390 px, en / zh |",
             "|---|---|---|---|---|"]
    for name, _who, _path in _pages(platform):
        en = " / ".join(str(english[(name, w)]["width"]) for w in WIDTHS)
        zh = " / ".join(str(chinese[(name, w)]["width"]) for w in WIDTHS)
        d = demo[(name, 390)]
        lines.append(f"| {name} | {share(d):.1%} ({d['latin']} / {d['cjk']}) | {en} | {zh} | "
                     f"{english[(name, 390)]['header']:.0f} / {chinese[(name, 390)]['header']:.0f} |")
    report = "\n".join(lines)
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(report + "\n")
    print("\n" + report)

    for (name, width), m in [*english.items(), *chinese.items(), *demo.items()]:
        assert m["width"] <= m["viewport"] == width, f"{name} is {m['width']}px wide at {width}px"
        assert m["header"] <= MAX_HEADER, f"{name} header is {m['header']}px tall at {width}px"
    small = {name: m["small"] for (name, _w), m in chinese.items() if m["small"]}
    assert not small, f"controls under 44px: {small}"
    for (name, _width), m in demo.items():
        assert share(m) <= MAX_LATIN, f"{name} in Chinese is {share(m):.0%} Latin letters"
    assert menu

    if os.environ.get("UPDATE_DOC_SCREENSHOTS"):
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        for name in ("home", "menu", "catalogue", "course", "lesson", "community", "checkout"):
            shutil.copyfile(SHOTS / f"{name}-zh-hans-390.png", DOCS_SHOTS / f"phone-zh-{name}.png")


def _menu_opens_without_javascript(browser, base: str) -> bool:
    """The menu toggle is a checkbox and its label: links hidden at first, shown after a tap, with scripts off."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{base}/")
    courses = page.locator("#site-menu a[href='/courses/']")
    hidden_first = not courses.is_visible()
    page.click("label.menu-button")
    shown = courses.is_visible()
    box = courses.bounding_box()
    context.close()
    return hidden_first and shown and box is not None and box["height"] >= 44


def _is_round(texts: list[str]) -> bool:
    """One chart's tick labels are round: evenly spaced by a 1-2-5 × 10^k step (analytics/reports/charts.py), each a
    multiple of it. A step of 50 makes 150 a round tick; a lone digit test would call it odd (it failed on a day
    whose revenue axis went to 250)."""
    values = [float(text.rstrip("%").replace(",", "")) for text in texts]
    if len(values) < 2:
        return len(values) == 1
    step = values[1] - values[0]
    if step <= 0:
        return False
    mantissa = step / 10 ** math.floor(math.log10(step))
    return (any(math.isclose(mantissa, m) for m in (1, 2, 5))
            and all(math.isclose(b - a, step) for a, b in zip(values, values[1:]))
            and all(math.isclose(v / step, round(v / step), abs_tol=1e-9) for v in values))


def test_chart_ticks_are_round_and_a_new_learner_sees_no_for_you_on_popularity(live_server, platform):
    base = live_server.url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844})
            page = context.new_page()
            _login(page, base, platform["staff"].email, PASSWORD)
            ticks = {}
            for path in ("/staff/", "/staff/revenue/"):  # the overview's charts and the MRR movements' stacked bars
                page.goto(f"{base}{path}")
                ticks[path] = [chart.locator("text.tick").all_text_contents() for chart in page.locator("svg.chart").all()]
            context.close()

            context = browser.new_context(viewport={"width": 390, "height": 844})
            page = context.new_page()
            _login(page, base, platform["newbie"].email, PASSWORD)
            page.goto(f"{base}/")
            page.wait_for_selector("#recommendations .card")
            home = page.locator("main").inner_text()
            page.goto(f"{base}/recommendations/row/")
            row = page.locator("main").inner_text()
            context.close()
        finally:
            browser.close()
    print("\nchart ticks:", ticks)
    assert all(ticks.values()), f"every page draws its charts: {ticks}"
    assert all(_is_round(chart) for charts in ticks.values() for chart in charts), ticks
    assert "Popular on the platform" in home and "Popular on the platform" in row
    assert not re.search(r"for you|like you", home + row, re.I)
