"""Rich lessons for the demo platform: media, worksheets, a drip schedule and quizzes.

Every demo lesson's text promises a video, so every lesson gets one: the same 8-second test-pattern clip
(members/demo/media/lesson-video.webm, VP8 + Opus, 55 KB), except the language courses, whose lessons are audio
(lesson-audio.mp3, 24 KB) and whose text says so. Both files were generated once with ffmpeg from its lavfi test
sources (testsrc, sine) and are committed, so seeding needs no ffmpeg. Each course's second lesson carries a
one-page worksheet PDF generated here (ReportLab, invariant mode: the same bytes every run), every course's wrap-up
lesson a three-question quiz, and a few courses drip their later lessons.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

from django.core.files.base import ContentFile, File
from django.core.files.storage import Storage

from members.demo import catalogue as cat
from members.models import Lesson, LessonAttachment, LessonMediaKind, Quiz, QuizChoice, QuizQuestion
from members.storage import private_media_storage

HERE = Path(__file__).resolve().parent / "media"
VIDEO = "lessons/media/demo/lesson-video.webm"
AUDIO = "lessons/media/demo/lesson-audio.mp3"
AUDIO_TOPICS = frozenset({"language"})
# Courses (by index in cat.COURSES) whose lessons after the third open every 2 days after enrolment.
DRIP_COURSES = frozenset({1, 5, 9})
DRIP_STEP_DAYS = 2

QUIZ = (
    # (question, (right answer, wrong, wrong))
    ("What should you do right after watching a lesson? / 看完一节课后应该做什么？",
     ("Try the exercise / 完成练习", "Skip to the last lesson / 直接跳到最后一课", "Nothing / 什么都不做")),
    ("Where do you share your answer? / 在哪里分享你的答案？",
     ("In the community / 在社区", "Nowhere / 不分享", "By post / 邮寄")),
    ("How do you get the certificate? / 如何获得证书？",
     ("Finish every lesson and pass the quiz / 学完所有课程并通过测验", "Buy it / 购买", "Ask the instructor / 找讲师要")),
)


def _store(storage: Storage, name: str, content: File | ContentFile) -> str:
    """Save under a fixed name once; a second seed reuses the file instead of piling up renamed copies."""
    if storage.exists(name):
        return name
    return storage.save(name, content)


def _worksheet_pdf(title: str) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=True)
    width, height = A4
    pdf.setFont("Helvetica-Bold", 18)
    pdf.drawString(60, height - 80, f"Worksheet: {title}"[:70])
    pdf.setFont("Helvetica", 12)
    for n, line in enumerate(("1. Write down the question this lesson answers.",
                              "2. Try the exercise on your own data.",
                              "3. Share one thing you learned in the community.")):
        pdf.drawString(60, height - 130 - 60 * n, line)
        pdf.line(60, height - 160 - 60 * n, width - 60, height - 160 - 60 * n)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def enrich_lessons(lessons: list[Lesson], course_specs: tuple[cat.CourseSpec, ...], course_ids: list[int]) -> None:
    """Before the lessons are inserted: media, drip days, and the text of audio lessons (in place)."""
    storage = private_media_storage()
    with (HERE / "lesson-video.webm").open("rb") as video, (HERE / "lesson-audio.mp3").open("rb") as audio:
        video_name = _store(storage, VIDEO, File(video))
        audio_name = _store(storage, AUDIO, File(audio))
    spec_of = {cid: (i, spec) for i, (cid, spec) in enumerate(zip(course_ids, course_specs, strict=True))}
    for lesson in lessons:
        index, spec = spec_of[lesson.course_id]
        # The clip is seconds long: the text says "short", not the lesson's full length in minutes.
        lesson.body = re.sub(r"Watch the \d+-minute video", "Watch the short video", lesson.body)
        lesson.body_zh_hans = re.sub(r"观看 \d+ 分钟的视频", "观看这段短视频", lesson.body_zh_hans or "")
        if spec.topic in AUDIO_TOPICS:
            lesson.media_kind, lesson.media_file = LessonMediaKind.AUDIO, audio_name
            lesson.body = (lesson.body.replace("Watch the short video", "Listen to the short audio")
                           .replace("看完视频后", "听完音频后"))
            lesson.body_zh_hans = lesson.body_zh_hans.replace("观看这段短视频", "收听这段短音频")
        else:
            lesson.media_kind, lesson.media_file = LessonMediaKind.VIDEO, video_name
        if index in DRIP_COURSES and lesson.position > 3:
            lesson.drip_days = DRIP_STEP_DAYS * (lesson.position - 3)


def add_extras(lessons: list[Lesson], course_specs: tuple[cat.CourseSpec, ...], course_ids: list[int]) -> dict[str, int]:
    """After the lessons are inserted: a worksheet on each course's lesson 2, a quiz on its last lesson."""
    storage = private_media_storage()
    titles = dict(zip(course_ids, (spec.title for spec in course_specs), strict=True))
    last = {}
    for lesson in lessons:
        if lesson.position >= last.get(lesson.course_id, (0, None))[0]:
            last[lesson.course_id] = (lesson.position, lesson)
    attachments, quizzes = [], []
    for lesson in lessons:
        if lesson.position == 2:
            name = _store(storage, f"lessons/attachments/demo/worksheet-{lesson.course_id}.pdf",
                          ContentFile(_worksheet_pdf(titles[lesson.course_id])))
            attachments.append(LessonAttachment(lesson=lesson, title="Worksheet (PDF) / 练习单", file=name))
    LessonAttachment.objects.bulk_create(attachments)
    for _position, lesson in last.values():
        quizzes.append(Quiz(lesson=lesson, pass_mark=60))
    Quiz.objects.bulk_create(quizzes)
    questions = [QuizQuestion(quiz=quiz, position=n, text=text) for quiz in quizzes for n, (text, _a) in enumerate(QUIZ)]
    QuizQuestion.objects.bulk_create(questions)
    choices = []
    for question in questions:
        right, *wrong = QUIZ[question.position][1]
        # The right answer is not always first: its place turns with the question.
        options = [(wrong[0], False), (wrong[1], False)]
        options.insert((question.position + question.quiz.lesson.course_id) % 3, (right, True))
        choices.extend(QuizChoice(question=question, text=text, is_correct=ok) for text, ok in options)
    QuizChoice.objects.bulk_create(choices)
    return {LessonAttachment._meta.label: len(attachments), Quiz._meta.label: len(quizzes)}
