"""Rich lesson pages: media (range requests), attachments, playback position, quizzes, certificates.

The lesson page itself is members.views.lesson_detail; it asks `lesson_extras` for what this module adds.
"""
from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from members import exceptions
from members.catalogue import selectors as catalogue_selectors
from members.learning import progress as learning_progress
from members.learning import selectors, services
from members.learning.ranges import ranged_file_response
from members.models import Certificate, Course, Lesson, LessonAttachment, LessonMediaKind, User


def _lesson_or_404(*, slug: str, position: int) -> Lesson:
    try:
        return (
            Lesson.objects.select_related("course")
            .prefetch_related("attachments", "quiz__questions__choices")
            .get(course__slug=slug, position=position, course__is_published=True, course__is_generic=False)
        )
    except Lesson.DoesNotExist:
        raise Http404 from None


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "403.html", {"message": message}, status=403)


# --------------------------------------------------------------------------------------------------------------
# What the lesson and course pages add


def lesson_extras(*, member: User, lesson: Lesson) -> dict[str, Any]:
    """Context for the lesson page: access (with the drip date), media, attachments, quiz, saved position."""
    access = selectors.lesson_access(member=member, lesson=lesson)
    quiz = selectors.lesson_quiz(lesson=lesson)
    progress = selectors.lesson_progress(member=member, lesson=lesson) if access.is_open else None
    certificate = None
    if progress is not None and progress.completed_at is not None:
        certificate = selectors.member_certificate(member=member, course=lesson.course)
    media_src = ""
    if lesson.media_kind != LessonMediaKind.NONE:
        if lesson.media_file:
            media_src = reverse("learning:lesson_media", args=[lesson.course.slug, lesson.position])
        else:
            media_src = lesson.media_url
    resume_at = progress.position_seconds if progress else 0
    return {
        "access": access,
        "media_src": media_src,
        "quiz": quiz,
        "quiz_attempt": selectors.quiz_best_attempt(member=member, quiz=quiz) if quiz and access.is_open else None,
        "attachments": list(lesson.attachments.all()),
        "resume_at": resume_at,
        "resume_label": f"{resume_at // 60}:{resume_at % 60:02d}",
        "certificate": certificate,
    }


def course_extras(*, member: User, course: Course) -> dict[str, Any]:
    """Marks each (prefetched) lesson with `opens_at` for the lesson list; the member's certificate, if any."""
    if not getattr(member, "is_authenticated", False):
        return {"certificate": None}
    schedule = selectors.course_schedule(member=member, course=course)
    for lesson in course.lessons.all():
        lesson.opens_at = schedule.get(lesson.pk)
    return {"certificate": selectors.member_certificate(member=member, course=course)}


# --------------------------------------------------------------------------------------------------------------
# Media and attachments


@require_safe
def lesson_media(request: HttpRequest, slug: str, position: int) -> HttpResponse:
    """The lesson's video or audio file, with range requests (players seek and resume with them)."""
    lesson = _lesson_or_404(slug=slug, position=position)
    if not selectors.lesson_access(member=request.user, lesson=lesson).is_open:
        return _forbidden(request, _("This lesson is locked."))
    if not lesson.media_file:
        raise Http404
    return ranged_file_response(request, lesson.media_file)


@require_safe
def attachment_download(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        attachment = selectors.attachment_with_lesson(pk=pk)
    except LessonAttachment.DoesNotExist:
        raise Http404 from None
    access = selectors.lesson_access(member=request.user, lesson=attachment.lesson)
    if not access.can_download:
        return _forbidden(request, _("Downloads are for members who bought the course or whose membership includes downloads."))
    return ranged_file_response(request, attachment.file, as_attachment=True, filename=attachment.filename)


# --------------------------------------------------------------------------------------------------------------
# Playback position and quizzes


@login_required
@require_POST
def lesson_position(request: HttpRequest, slug: str, position: int) -> HttpResponse:
    """The player's ping: `position` (where it is) and `watched` (seconds really played since the last ping)."""
    lesson = _lesson_or_404(slug=slug, position=position)
    try:
        seconds = int(float(request.POST.get("position", "")))
        watched = int(float(request.POST.get("watched", "0") or 0))
    except (TypeError, ValueError, OverflowError):
        return JsonResponse({"error": "position and watched are numbers of seconds"}, status=400)
    try:
        progress = services.lesson_position_save(
            member=request.user, lesson=lesson, position_seconds=seconds, watched_seconds=watched
        )
    except exceptions.LessonLocked as error:
        return JsonResponse({"error": error.code, "message": error.message}, status=403)
    return JsonResponse({"position": progress.position_seconds, "seconds_watched": progress.seconds_watched})


@login_required
@require_POST
def quiz_submit(request: HttpRequest, slug: str, position: int) -> HttpResponse:
    lesson = _lesson_or_404(slug=slug, position=position)
    quiz = selectors.lesson_quiz(lesson=lesson)
    if quiz is None:
        raise Http404
    answers: dict[int, int] = {}
    for question in quiz.questions.all():
        raw = request.POST.get(f"q{question.pk}", "")
        if raw.isdigit():
            answers[question.pk] = int(raw)
    context: dict[str, Any] = {"lesson": lesson, "course": lesson.course, "quiz": quiz, "error": None}
    try:
        context["quiz_attempt"] = services.quiz_submit(member=request.user, quiz=quiz, answers=answers)
    except exceptions.LessonLocked as error:
        return _forbidden(request, error.message)
    except exceptions.QuizInvalid as error:
        # Shown in place (htmx swaps only 2xx answers by default), or as a message after the redirect below.
        context["error"] = error.message
        context["quiz_attempt"] = selectors.quiz_best_attempt(member=request.user, quiz=quiz)
        context["answers"] = answers
    if request.htmx:
        return render(request, "members/learning/_quiz.html", context)
    if context["error"]:
        messages.error(request, context["error"])
    return redirect(f"{lesson.get_absolute_url()}#quiz")


# --------------------------------------------------------------------------------------------------------------
# Certificates


@login_required
def certificate_mine(request: HttpRequest, slug: str) -> HttpResponse:
    """The member's certificate for a course (issued here if earned but not yet issued); else what is missing."""
    course = get_object_or_404(catalogue_selectors.course_list(), slug=slug)
    try:
        certificate = services.certificate_claim(member=request.user, course=course)
    except exceptions.CertificateNotEarned as error:
        completion = selectors.course_completion(member=request.user, course=course)
        return render(request, "members/learning/certificate_missing.html", {
            "course": course, "completion": completion, "message": error.message,
            "entitled": selectors.certificate_entitled(member=request.user, course=course),
        }, status=403)
    return redirect("learning:certificate_verify", code=certificate.code)


def certificate_verify(request: HttpRequest, code: str) -> HttpResponse:
    """Public: anyone holding the link can see that the certificate is genuine."""
    try:
        certificate = selectors.certificate_by_code(code=code)
    except Certificate.DoesNotExist:
        raise Http404 from None
    return render(request, "members/learning/certificate.html", {
        "certificate": certificate,
        "verify_url": request.build_absolute_uri(certificate.get_absolute_url()),
        "is_owner": request.user.is_authenticated and request.user.pk == certificate.member_id,
    })


def certificate_pdf(request: HttpRequest, code: str) -> HttpResponse:
    try:
        certificate = selectors.certificate_by_code(code=code)
    except Certificate.DoesNotExist:
        raise Http404 from None
    from members.learning.pdf import certificate_pdf_bytes

    verify_url = request.build_absolute_uri(certificate.get_absolute_url())
    response = HttpResponse(certificate_pdf_bytes(certificate=certificate, verify_url=verify_url),
                            content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="certificate-{certificate.code}.pdf"'
    return response


# --------------------------------------------------------------------------------------------------------------
# The lesson page and "mark complete"


def _lesson_context(request: HttpRequest, *, slug: str, position: int) -> dict[str, object]:
    course = get_object_or_404(catalogue_selectors.course_list(), slug=slug)
    lessons = list(course.lessons.order_by("position"))
    lesson = next((item for item in lessons if item.position == position), None)
    if lesson is None:
        raise Http404
    lesson.course = course
    member = request.user
    has_access = member_access = catalogue_selectors.member_has_course_access(member=member, course=course)
    if lesson.is_preview:
        has_access = True
    index = lessons.index(lesson)
    completed = False
    progress = None
    extras = lesson_extras(member=member, lesson=lesson)  # media, drip, attachments, quiz
    if extras["access"].drip_locked:
        has_access = False
    if member.is_authenticated and member_access:
        completed = selectors.lesson_completed(member=member, lesson=lesson)
        progress = selectors.course_progress(member=member, course=course)
    return {
        "course": course, "lesson": lesson, "lessons": lessons, "has_access": has_access,
        "member_access": member_access, "completed": completed, "progress": progress,
        "next_lesson": lessons[index + 1] if index + 1 < len(lessons) else None,
        "previous_lesson": lessons[index - 1] if index > 0 else None,
        **extras,
    }


def lesson_detail(request: HttpRequest, slug: str, position: int) -> HttpResponse:
    context = _lesson_context(request, slug=slug, position=position)
    if not context["has_access"]:
        return render(request, "members/lesson_detail.html", context, status=403)
    if request.user.is_authenticated and context["member_access"] and context["access"].is_open:
        learning_progress.lesson_view(member=request.user, lesson=context["lesson"])
    return render(request, "members/lesson_detail.html", context)


@login_required
@require_POST
def lesson_complete(request: HttpRequest, slug: str, position: int) -> HttpResponse:
    context = _lesson_context(request, slug=slug, position=position)
    try:
        learning_progress.lesson_complete(member=request.user, lesson=context["lesson"])
    except exceptions.LessonLocked as error:
        if request.htmx:
            return render(request, "members/lesson_detail.html#complete", {**context, "error": error.message},
                          status=403)
        messages.error(request, error.message)
        return redirect("members:course_detail", slug=slug)
    context = _lesson_context(request, slug=slug, position=position)
    if request.htmx:
        return render(request, "members/lesson_detail.html#complete", context)
    return redirect("learning:lesson_detail", slug=slug, position=position)
