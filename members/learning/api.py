"""API for rich lessons: a member's lesson schedule for a course (drip dates, media, quiz state, saved position).

Mounted by members/api/urls.py: GET /api/v1/me/courses/<slug>/lessons/, POST /api/v1/me/lessons/<pk>/position/.
"""
from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_errors import error_responses
from members.catalogue import selectors as catalogue_selectors
from members.learning import selectors, services
from members.models import Course, Lesson, LessonProgress, QuizAttempt


class LessonScheduleOutput(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    title = serializers.CharField()
    media_kind = serializers.CharField()
    drip_days = serializers.IntegerField()
    is_open = serializers.BooleanField(help_text="The member may open, play and complete the lesson now.")
    opens_at = serializers.DateTimeField(allow_null=True, help_text="Set while the drip schedule holds it back.")
    completed = serializers.BooleanField()
    position_seconds = serializers.IntegerField(help_text="Where the player stopped (resumed on return).")
    has_quiz = serializers.BooleanField()
    quiz_passed = serializers.BooleanField()
    attachments = serializers.IntegerField(help_text="Number of downloads attached to the lesson.")


class CourseScheduleOutput(serializers.Serializer):
    course = serializers.CharField(help_text="The course slug.")
    has_access = serializers.BooleanField()
    certificate_url = serializers.CharField(allow_null=True, help_text="Public verification page, once issued.")
    lessons = LessonScheduleOutput(many=True)


@extend_schema(
    tags=["me"], summary="My lessons in a course: drip dates, media, quiz results, saved position",
    responses={200: CourseScheduleOutput, **error_responses(401, 404)},
    examples=[OpenApiExample("Schedule", response_only=True, value={
        "course": "sql-for-analysts", "has_access": True, "certificate_url": None, "lessons": [
            {"id": 31, "position": 1, "title": "SELECT", "media_kind": "video", "drip_days": 0, "is_open": True,
             "opens_at": None, "completed": True, "position_seconds": 312, "has_quiz": True, "quiz_passed": True,
             "attachments": 1},
            {"id": 32, "position": 2, "title": "JOIN", "media_kind": "video", "drip_days": 7, "is_open": False,
             "opens_at": "2026-12-08T09:00:00Z", "completed": False, "position_seconds": 0, "has_quiz": False,
             "quiz_passed": False, "attachments": 0}]})],
)
class CourseScheduleView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def get(self, request: Request, slug: str) -> Response:
        try:
            course = catalogue_selectors.course_with_lessons(slug=slug)
        except Course.DoesNotExist:
            raise Http404 from None
        if not course.is_published or course.is_generic:
            raise Http404
        member = request.user
        has_access = catalogue_selectors.member_has_course_access(member=member, course=course)
        schedule = selectors.course_schedule(member=member, course=course)
        lessons = list(course.lessons.prefetch_related("attachments").select_related("quiz"))
        progress = {p.lesson_id: p for p in LessonProgress.objects.filter(member=member, lesson__course=course)}
        passed = set(QuizAttempt.objects.filter(member=member, quiz__lesson__course=course, passed=True)
                     .values_list("quiz__lesson_id", flat=True))
        rows = []
        for lesson in lessons:
            opens_at = schedule.get(lesson.pk) if has_access else None
            row = progress.get(lesson.pk)
            rows.append({
                "id": lesson.pk, "position": lesson.position, "title": lesson.title, "media_kind": lesson.media_kind,
                "drip_days": lesson.drip_days, "is_open": (has_access and opens_at is None) or lesson.is_preview,
                "opens_at": opens_at, "completed": bool(row and row.completed_at),
                "position_seconds": row.position_seconds if row else 0,
                "has_quiz": hasattr(lesson, "quiz"), "quiz_passed": lesson.pk in passed,
                "attachments": len(lesson.attachments.all()),
            })
        certificate = selectors.member_certificate(member=member, course=course)
        return Response(CourseScheduleOutput({
            "course": course.slug, "has_access": has_access, "lessons": rows,
            "certificate_url": request.build_absolute_uri(certificate.get_absolute_url()) if certificate else None,
        }).data)


class PositionInput(serializers.Serializer):
    position = serializers.IntegerField(min_value=0, max_value=10**9, help_text="Where the player is, in seconds.")
    watched = serializers.IntegerField(min_value=0, max_value=10**9, default=0,
                                       help_text="Seconds really played since the last ping (capped at 120).")


class PositionOutput(serializers.Serializer):
    position = serializers.IntegerField(source="position_seconds")
    seconds_watched = serializers.IntegerField()


@extend_schema(
    tags=["me"], summary="Save my playback position in a lesson (apps' player ping)", request=PositionInput,
    description="400 `lesson_locked` without access, `lesson_not_open_yet` while the drip schedule holds it back.",
    responses={200: PositionOutput, **error_responses(400, 401, 404)},
)
class LessonPositionView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request, pk: int) -> Response:
        lesson = Lesson.objects.select_related("course").filter(
            pk=pk, course__in=catalogue_selectors.course_list()
        ).first()
        if lesson is None:
            raise Http404
        data = PositionInput(data=request.data)
        data.is_valid(raise_exception=True)
        progress = services.lesson_position_save(
            member=request.user, lesson=lesson, position_seconds=data.validated_data["position"],
            watched_seconds=data.validated_data["watched"],
        )
        return Response(PositionOutput(progress).data)
