"""Rich lessons in a real browser (Debian's chromium): a video lesson plays, the position is remembered and resumed
on return, and a completed course (lessons done, quiz passed) yields a certificate anyone can verify."""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("chromium is not installed at /usr/bin/chromium (make chromium installs it)", allow_module_level=True)

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from django.core.files import File
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from members.models import Certificate, Enrollment, LessonMediaKind, LessonProgress, Quiz, QuizChoice, QuizQuestion
from tests.members.factories import CourseFactory, EnrollmentFactory, LessonFactory, UserFactory

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
CLIP = ROOT / "members" / "demo" / "media" / "lesson-video.webm"  # 8 s, VP8
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--autoplay-policy=no-user-gesture-required", "--mute-audio"]
PASSWORD = "pw-for-tests-123"


@pytest.fixture
def video_course(db, settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    course = CourseFactory(title="Video basics", slug="video-basics")
    video = LessonFactory(course=course, position=1, title="Watch the clip", media_kind=LessonMediaKind.VIDEO,
                          body="Watch the short video.")
    with CLIP.open("rb") as handle:
        video.media_file.save("clip.webm", File(handle), save=True)
    second = LessonFactory(course=course, position=2, title="Check yourself", body="One question.")
    quiz = Quiz.objects.create(lesson=second, pass_mark=100)
    question = QuizQuestion.objects.create(quiz=quiz, position=0, text="What did the clip show?")
    QuizChoice.objects.create(question=question, text="A test pattern", is_correct=True)
    QuizChoice.objects.create(question=question, text="A cat", is_correct=False)
    learner = UserFactory(email="viewer@example.com", display_name="Vera Viewer")
    EnrollmentFactory(member=learner, course=course, source=Enrollment.Source.PURCHASE,
                      enrolled_at=timezone.now() - timedelta(days=1))
    return course, video, second, learner


@pytest.mark.django_db(transaction=True)
def test_a_video_lesson_plays_resumes_and_a_finished_course_gives_a_verifiable_certificate(live_server, video_course):
    course, video, second, learner = video_course
    base = live_server.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20000)
            page.goto(f"{base}/accounts/login/?next={video.get_absolute_url()}")
            page.fill("input[name=username]", learner.email)
            page.fill("input[name=password]", PASSWORD)
            page.click("form.form button[type=submit]")
            page.wait_for_url(f"{base}{video.get_absolute_url()}")

            # It plays: time advances past 3 s; pausing pings the position, which the server stores.
            player = page.locator("#lesson-player")
            expect(player).to_be_visible()
            page.evaluate("document.getElementById('lesson-player').play()")
            page.wait_for_function("() => document.getElementById('lesson-player').currentTime >= 3")
            page.evaluate("document.getElementById('lesson-player').pause()")
            page.wait_for_function("() => /^[0-9]+$/.test(document.getElementById('lesson-player').dataset.saved || '')")
            saved = int(page.evaluate("document.getElementById('lesson-player').dataset.saved"))
            assert saved >= 3
            progress = LessonProgress.objects.get(member=learner, lesson=video)
            assert progress.position_seconds == saved and progress.seconds_watched >= 2
            page.screenshot(path=str(SHOTS / "lesson-video.png"), full_page=True)

            # It resumes: on return the player seeks to the remembered second (a range request on the file).
            page.reload()
            expect(page.locator("#resume-note")).to_be_visible()
            page.wait_for_function(
                f"() => document.getElementById('lesson-player').readyState >= 1 && "
                f"Math.abs(document.getElementById('lesson-player').currentTime - {saved}) < 1"
            )

            # Finish the course: complete both lessons and pass the quiz.
            page.click("#lesson-progress button[type=submit]")
            expect(page.locator("#lesson-progress")).to_contain_text("Lesson completed")
            page.goto(f"{base}{second.get_absolute_url()}")
            page.check("text=A cat")
            page.click("#quiz button[type=submit]")
            expect(page.locator("#quiz-result")).to_contain_text("Not passed yet")
            page.check("text=A test pattern")
            page.click("#quiz button[type=submit]")
            expect(page.locator("#quiz-result")).to_contain_text("Passed")
            page.screenshot(path=str(SHOTS / "lesson-quiz.png"), full_page=True)
            page.click("#lesson-progress button[type=submit]")
            expect(page.locator("#certificate-link")).to_be_visible()
            page.click("#certificate-link")
            expect(page.locator("#certificate-verified")).to_be_visible()
            verify_url = page.url
            certificate = Certificate.objects.get(member=learner, course=course)
            assert verify_url == f"{base}/certificates/{certificate.code}/"
            page.screenshot(path=str(SHOTS / "certificate.png"), full_page=True)

            # On a phone neither the certificate nor the video lesson is wider than the screen.
            page.set_viewport_size({"width": 390, "height": 844})
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.screenshot(path=str(SHOTS / "certificate-phone.png"), full_page=True)
            page.goto(f"{base}{video.get_absolute_url()}")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390

            # Anyone can verify it: a fresh browser context with no session opens the same URL.
            stranger = browser.new_context().new_page()
            stranger.goto(verify_url)
            expect(stranger.locator("#certificate-verified")).to_be_visible()
            expect(stranger.locator("#certificate-name")).to_have_text("Vera Viewer")
            expect(stranger.locator("#certificate-course")).to_have_text("Video basics")
            assert stranger.goto(f"{base}/certificates/{'x' * 22}/").status == 404
        finally:
            browser.close()
