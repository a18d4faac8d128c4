"""Community API: posts, comments (one level of replies), reactions, and my notifications.

Same services and permissions as the site: anyone reads the feed; members write; authors (or staff) edit and
delete their own content — community.services raises NotAllowed/StaffOnly, which the API's error handler turns
into 403 — and only staff pin and hide. Hidden posts and comments are invisible to everyone but staff.
"""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import generics, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from community import selectors, services
from community.api import serializers as s
from community.models import Comment, Notification, Post
from config.api_errors import error_responses
from members import pagecache
from members.catalogue import selectors as members_selectors

AUTHOR = {"id": 7, "name": "Alice"}
POST_EXAMPLE = {
    "id": 12, "title": "Study group for SQL", "author": AUTHOR, "course": "sql-for-analysts",
    "body_html": "<p>Who wants to join?</p>", "is_pinned": False, "is_hidden": False,
    "created_at": "2026-11-29T06:00:00Z", "updated_at": "2026-11-29T06:00:00Z", "comment_count": 2,
    "reaction_count": 5, "liked": True,
}
COMMENT_EXAMPLE = {
    "id": 40, "author": AUTHOR, "parent": None, "body": "Me!", "body_html": "<p>Me!</p>", "is_hidden": False,
    "created_at": "2026-11-29T06:01:00Z", "updated_at": "2026-11-29T06:01:00Z", "replies": [],
}


def _is_staff(request: Request) -> bool:
    return bool(getattr(request.user, "is_staff", False))


def _post_or_404(request: Request, pk: int) -> Post:
    try:
        return selectors.post_list(include_hidden=_is_staff(request)).get(pk=pk)
    except Post.DoesNotExist:
        raise Http404 from None


def _comment_or_404(request: Request, pk: int) -> Comment:
    qs = Comment.objects.select_related("post", "author")
    if not _is_staff(request):
        qs = qs.filter(is_hidden=False, post__is_hidden=False)
    try:
        return qs.get(pk=pk)
    except Comment.DoesNotExist:
        raise Http404 from None


def _post_detail(request: Request, pk: int) -> dict[str, Any]:
    try:
        post = selectors.post_detail(pk=pk, member=request.user, include_hidden=_is_staff(request))
    except Post.DoesNotExist:
        raise Http404 from None
    return s.PostDetailOutput(post).data


def _valid_query(serializer_class: type, request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _valid(serializer_class: type, request: Request, *, partial: bool = False) -> dict[str, Any]:
    serializer = serializer_class(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --------------------------------------------------------------------------------------------------------------
# Posts


class PostListView(generics.ListCreateAPIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    serializer_class = s.PostListOutput
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Post]:
        query = _valid_query(s.FeedQueryInput, self.request)
        return selectors.feed(member=self.request.user, scope=query["scope"], course_id=query.get("course"),
                              include_hidden=_is_staff(self.request))

    @extend_schema(
        tags=["community"], summary="The feed (pinned first, newest next)",
        parameters=[s.FeedQueryInput],
        responses={200: s.PostListOutput(many=True), **error_responses(400)},
        examples=[OpenApiExample("Post", value=POST_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # From the page cache per member (members.pagecache): post, comment and reaction writes bump its version.
        return pagecache.cached_api_data(request, lambda: super(PostListView, self).get(request, *args, **kwargs))

    @extend_schema(
        tags=["community"], summary="Write a post (Markdown; sanitised on save; @mentions notify)",
        request=s.PostCreateInput, responses={201: s.PostDetailOutput, **error_responses(400, 401, 404)},
        examples=[OpenApiExample("New post", request_only=True,
                                 value={"title": "Study group for SQL", "body": "Who wants to join?"}),
                  OpenApiExample("Created", response_only=True,
                                 value={**POST_EXAMPLE, "body": "Who wants to join?", "comments": []})],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = _valid(s.PostCreateInput, request)
        course = None
        if data.get("course"):
            course = members_selectors.course_list().filter(slug=data["course"]).first()
            if course is None:
                raise Http404("No such course.")
        post = services.post_create(author=request.user, title=data["title"], body=data["body"], course=course)
        return Response(_post_detail(request, post.pk), status=status.HTTP_201_CREATED)


class PostDetailView(APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(tags=["community"], summary="A post with its comments and replies",
                   responses={200: s.PostDetailOutput, **error_responses(404)},
                   examples=[OpenApiExample("Post", response_only=True, value={
                       **POST_EXAMPLE, "body": "Who wants to join?", "comments": [COMMENT_EXAMPLE]})])
    def get(self, request: Request, pk: int) -> Response:
        return Response(_post_detail(request, pk))

    @extend_schema(tags=["community"], summary="Edit my post (staff: any post)", request=s.PostUpdateInput,
                   responses={200: s.PostDetailOutput, **error_responses(400, 401, 403, 404)},
                   examples=[OpenApiExample("Edit", value={"body": "Updated text"}, request_only=True),
                             OpenApiExample("Edited", response_only=True,
                                            value={**POST_EXAMPLE, "body": "Updated text", "comments": []})])
    def patch(self, request: Request, pk: int) -> Response:
        post = _post_or_404(request, pk)
        data = _valid(s.PostUpdateInput, request, partial=True)
        services.post_update(post=post, member=request.user, title=data.get("title", post.title),
                             body=data.get("body", post.body))
        return Response(_post_detail(request, pk))

    @extend_schema(tags=["community"], summary="Delete my post (staff: any post)", request=None,
                   responses={204: OpenApiResponse(description="Deleted."), **error_responses(401, 403, 404)})
    def delete(self, request: Request, pk: int) -> Response:
        services.post_delete(post=_post_or_404(request, pk), member=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["community"], summary="Staff: pin or unpin a post", request=s.FlagInput,
               responses={200: s.PostDetailOutput, **error_responses(400, 401, 403, 404)},
               examples=[OpenApiExample("Pin", value={"value": True}, request_only=True),
                         OpenApiExample("Pinned", value={**POST_EXAMPLE, "is_pinned": True, "body": "…", "comments": []}, response_only=True)])
class PostPinView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request, pk: int) -> Response:
        data = _valid(s.FlagInput, request)
        services.post_pin(post=_post_or_404(request, pk), member=request.user, pinned=data["value"])
        return Response(_post_detail(request, pk))


@extend_schema(tags=["community"], summary="Staff: hide or unhide a post", request=s.FlagInput,
               responses={200: s.PostDetailOutput, **error_responses(400, 401, 403, 404)},
               examples=[OpenApiExample("Hide", value={"value": True}, request_only=True),
                         OpenApiExample("Hidden", value={**POST_EXAMPLE, "is_hidden": True, "body": "…", "comments": []}, response_only=True)])
class PostHideView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request, pk: int) -> Response:
        data = _valid(s.FlagInput, request)
        services.post_hide(post=_post_or_404(request, pk), member=request.user, hidden=data["value"])
        return Response(_post_detail(request, pk))


# --------------------------------------------------------------------------------------------------------------
# Comments


@extend_schema(
    tags=["community"], summary="Comment on a post, or reply to a comment", request=s.CommentCreateInput,
    description="A reply to a reply attaches to the top-level comment: threads are one level deep.",
    responses={201: s.CommentOutput, **error_responses(400, 401, 404)},
    examples=[OpenApiExample("Reply", value={"body": "Me too", "parent": 40}, request_only=True),
              OpenApiExample("Created", value={**COMMENT_EXAMPLE, "parent": 40}, response_only=True)],
)
class CommentCreateView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request, pk: int) -> Response:
        post = _post_or_404(request, pk)
        data = _valid(s.CommentCreateInput, request)
        parent = _comment_or_404(request, data["parent"]) if data.get("parent") else None
        comment = services.comment_create(post=post, author=request.user, body=data["body"], parent=parent)
        comment = Comment.objects.select_related("author").prefetch_related("replies__author").get(pk=comment.pk)
        return Response(s.CommentOutput(comment).data, status=status.HTTP_201_CREATED)


class CommentDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(tags=["community"], summary="Edit my comment (staff: any)", request=s.CommentUpdateInput,
                   responses={200: s.ReplyOutput, **error_responses(400, 401, 403, 404)},
                   examples=[OpenApiExample("Edit", value={"body": "Edited"}, request_only=True),
                             OpenApiExample("Edited", response_only=True, value={
                                 k: v for k, v in {**COMMENT_EXAMPLE, "body": "Edited"}.items() if k != "replies"})])
    def patch(self, request: Request, pk: int) -> Response:
        data = _valid(s.CommentUpdateInput, request)
        comment = services.comment_update(comment=_comment_or_404(request, pk), member=request.user, body=data["body"])
        return Response(s.ReplyOutput(comment).data)

    @extend_schema(tags=["community"], summary="Delete my comment and its replies (staff: any)", request=None,
                   responses={204: OpenApiResponse(description="Deleted."), **error_responses(401, 403, 404)})
    def delete(self, request: Request, pk: int) -> Response:
        services.comment_delete(comment=_comment_or_404(request, pk), member=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["community"], summary="Staff: hide or unhide a comment", request=s.FlagInput,
               responses={200: s.ReplyOutput, **error_responses(400, 401, 403, 404)},
               examples=[OpenApiExample("Hide", value={"value": True}, request_only=True),
                         OpenApiExample("Hidden", response_only=True, value={
                             k: v for k, v in {**COMMENT_EXAMPLE, "is_hidden": True}.items() if k != "replies"})])
class CommentHideView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request, pk: int) -> Response:
        data = _valid(s.FlagInput, request)
        comment = services.comment_hide(comment=_comment_or_404(request, pk), member=request.user, hidden=data["value"])
        return Response(s.ReplyOutput(comment).data)


# --------------------------------------------------------------------------------------------------------------
# Reactions

REACTION_SCHEMA = {
    "tags": ["community"], "request": s.ReactionInput,
    "responses": {200: s.ReactionOutput, **error_responses(400, 401, 404)},
    "examples": [OpenApiExample("Like", value={"kind": "like"}, request_only=True),
                 OpenApiExample("Now liked", value={"kind": "like", "active": True}, response_only=True)],
}


@extend_schema(summary="Toggle my reaction on a post", **REACTION_SCHEMA)
class PostReactionView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request, pk: int) -> Response:
        data = _valid(s.ReactionInput, request)
        active = services.reaction_toggle(member=request.user, post=_post_or_404(request, pk), kind=data["kind"])
        return Response(s.ReactionOutput({"kind": data["kind"], "active": active}).data)


@extend_schema(summary="Toggle my reaction on a comment", **REACTION_SCHEMA)
class CommentReactionView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request, pk: int) -> Response:
        data = _valid(s.ReactionInput, request)
        active = services.reaction_toggle(member=request.user, comment=_comment_or_404(request, pk), kind=data["kind"])
        return Response(s.ReactionOutput({"kind": data["kind"], "active": active}).data)


# --------------------------------------------------------------------------------------------------------------
# Notifications

NOTIFICATION_EXAMPLE = {
    "id": 90, "actor": {"id": 8, "name": "Bob"}, "verb": "replied", "target_type": "comment", "target_id": 41,
    "target_url": "/community/posts/12/#comment-41", "text": "Me too", "created_at": "2026-11-29T06:02:00Z",
    "read_at": None, "is_read": False,
}


@extend_schema(tags=["me"], summary="My notifications, newest first",
               parameters=[OpenApiParameter("unread", OpenApiTypes.BOOL, description="Only unread ones.")],
               responses={200: s.NotificationOutput(many=True), **error_responses(401)},
               examples=[OpenApiExample("Notification", value=NOTIFICATION_EXAMPLE, response_only=True)])
class NotificationListView(generics.ListAPIView):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = s.NotificationOutput
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Notification]:
        qs = selectors.notification_list(member=self.request.user)
        if self.request.query_params.get("unread") in {"1", "true", "True"}:
            qs = qs.filter(read_at__isnull=True)
        return qs


@extend_schema(tags=["me"], summary="Mark one of my notifications read", request=None,
               responses={200: s.NotificationOutput, **error_responses(401, 404)},
               examples=[OpenApiExample("Read", response_only=True, value={
                   **NOTIFICATION_EXAMPLE, "read_at": "2026-11-29T06:05:00Z", "is_read": True})])
class NotificationReadView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request, pk: int) -> Response:
        try:
            notification = selectors.notification_list(member=request.user).get(pk=pk)
        except Notification.DoesNotExist:
            raise Http404 from None
        notification = services.notification_mark_read(notification=notification, member=request.user)
        return Response(s.NotificationOutput(notification).data)


@extend_schema(tags=["me"], summary="Mark all my notifications read", request=None,
               responses={200: s.MarkAllReadOutput, **error_responses(401)},
               examples=[OpenApiExample("Marked", value={"marked": 3}, response_only=True)])
class NotificationReadAllView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request) -> Response:
        marked = services.notifications_mark_all_read(member=request.user)
        return Response(s.MarkAllReadOutput({"marked": marked}).data)


# --------------------------------------------------------------------------------------------------------------
# Follows


@extend_schema(tags=["community"], summary="Follow or unfollow a member (toggle)", request=None,
               description="400 `cannot_follow_self` for oneself.",
               responses={200: s.FollowOutput, **error_responses(400, 401, 404)},
               examples=[OpenApiExample("Now following", value={"following": True}, response_only=True)])
class FollowView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request, pk: int) -> Response:
        from django.contrib.auth import get_user_model

        try:
            other = get_user_model().objects.get(pk=pk, is_active=True)
        except get_user_model().DoesNotExist:
            raise Http404 from None
        return Response(s.FollowOutput({"following": services.follow_toggle(follower=request.user,
                                                                           followed=other)}).data)
