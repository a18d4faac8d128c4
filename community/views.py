"""Community pages. Same shape as the members views: permission, form, service, render; page or htmx fragment."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from community import exceptions, selectors, services
from community.forms import CommentForm, PostEditForm, PostForm
from community.models import Comment, Notification, Post
from members.models import Course
from members.pagecache import cached_page

FEED_PAGE_SIZE = 20
NOTIFICATIONS_PAGE_SIZE = 30


def _can_see_hidden(request: HttpRequest) -> bool:
    return bool(request.user.is_authenticated and request.user.is_staff)


@cached_page
@vary_on_headers("HX-Request")
def feed(request: HttpRequest) -> HttpResponse:
    scope = request.GET.get("scope", "all")
    if scope not in {"all", "following"}:
        scope = "all"
    course = None
    if request.GET.get("course", "").isdigit():
        course = Course.objects.filter(pk=int(request.GET["course"]), is_published=True).first()
    posts = selectors.feed(member=request.user, scope=scope, course_id=course.pk if course else None,
                           include_hidden=_can_see_hidden(request))
    page = Paginator(posts, FEED_PAGE_SIZE).get_page(request.GET.get("page"))
    template = "community/feed.html#posts" if request.htmx and not request.htmx.history_restore_request else "community/feed.html"
    return render(request, template, {"page": page, "scope": scope, "course": course, "form": PostForm(
        initial={"course": course})})


@login_required
def post_create(request: HttpRequest) -> HttpResponse:
    form = PostForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        post = services.post_create(author=request.user, title=form.cleaned_data["title"],
                                    body=form.cleaned_data["body"], course=form.cleaned_data["course"])
        messages.success(request, _("Your post is live."))
        return redirect(post)
    return render(request, "community/post_form.html", {"form": form})


def post_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        post = selectors.post_detail(pk=pk, member=request.user, include_hidden=_can_see_hidden(request))
    except Post.DoesNotExist:
        from django.http import Http404

        raise Http404 from None
    following = selectors.is_following(follower=request.user, followed=post.author)
    return render(request, "community/post_detail.html", {
        "post": post, "comment_form": CommentForm(), "following": following,
        "reactions": selectors.reaction_counts(post=post), "mine": selectors.member_reactions(post=post, member=request.user),
    })


def _edit(
    request: HttpRequest, *, obj: Post | Comment, form: forms.Form, save: Callable[[dict[str, Any]], object],
    done_url: str, template: str, context: dict[str, object],
) -> HttpResponse:
    """The edit page of a post or a comment: the author or staff only, and nobody for an authorless one
    (AuthoredMixin.can_edit); on a valid POST the service saves and the member goes back to the thread."""
    if not obj.can_edit(request.user):
        message = exceptions.AuthorDeleted().message if obj.author_id is None else None
        return render(request, "403.html", {"message": message}, status=403)
    if request.method == "POST" and form.is_valid():
        save(form.cleaned_data)
        messages.success(request, _("Saved."))
        return redirect(done_url)
    return render(request, template, {"form": form, **context})


@login_required
def post_edit(request: HttpRequest, pk: int) -> HttpResponse:
    post = get_object_or_404(Post, pk=pk)
    return _edit(
        request, obj=post, form=PostEditForm(request.POST or None, initial={"title": post.title, "body": post.body}),
        save=lambda data: services.post_update(post=post, member=request.user, **data),
        done_url=post.get_absolute_url(), template="community/post_form.html", context={"post": post},
    )


@login_required
@require_POST
def post_delete(request: HttpRequest, pk: int) -> HttpResponse:
    post = get_object_or_404(Post, pk=pk)
    try:
        services.post_delete(post=post, member=request.user)
    except exceptions.CommunityError as error:
        return render(request, "403.html", {"message": error.message}, status=403)
    messages.success(request, _("Post deleted."))
    if request.htmx:
        return HttpResponseClientRedirect("/community/")
    return redirect("community:feed")


@login_required
@require_POST
def comment_create(request: HttpRequest, pk: int) -> HttpResponse:
    post = get_object_or_404(selectors.post_list(include_hidden=_can_see_hidden(request)), pk=pk)
    form = CommentForm(request.POST)
    if form.is_valid():
        parent = None
        if form.cleaned_data.get("parent"):
            parent = get_object_or_404(Comment, pk=form.cleaned_data["parent"], post=post)
        comment = services.comment_create(post=post, author=request.user, body=form.cleaned_data["body"], parent=parent)
        return redirect(f"{post.get_absolute_url()}#comment-{comment.pk}")
    messages.error(request, _("Write something first."))
    return redirect(post)


@login_required
def comment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    comment = get_object_or_404(Comment.objects.select_related("post"), pk=pk)
    return _edit(
        request, obj=comment, form=CommentForm(request.POST or None, initial={"body": comment.body}),
        save=lambda data: services.comment_update(comment=comment, member=request.user, body=data["body"]),
        done_url=f"{comment.post.get_absolute_url()}#comment-{comment.pk}", template="community/comment_form.html",
        context={"comment": comment},
    )


@login_required
@require_POST
def comment_hide(request: HttpRequest, pk: int) -> HttpResponse:
    comment = get_object_or_404(Comment.objects.select_related("post"), pk=pk)
    try:
        services.comment_hide(comment=comment, member=request.user, hidden=not comment.is_hidden)
    except exceptions.CommunityError as error:
        return render(request, "403.html", {"message": error.message}, status=403)
    return redirect(comment.post)


@login_required
@require_POST
def comment_delete(request: HttpRequest, pk: int) -> HttpResponse:
    comment = get_object_or_404(Comment.objects.select_related("post"), pk=pk)
    post = comment.post
    try:
        services.comment_delete(comment=comment, member=request.user)
    except exceptions.CommunityError as error:
        return render(request, "403.html", {"message": error.message}, status=403)
    messages.success(request, _("Comment deleted."))
    return redirect(post)


@login_required
@require_POST
def post_react(request: HttpRequest, pk: int) -> HttpResponse:
    post = get_object_or_404(selectors.post_list(include_hidden=_can_see_hidden(request)), pk=pk)
    kind = request.POST.get("kind", "like")
    try:
        services.reaction_toggle(member=request.user, post=post, kind=kind)
    except exceptions.CommunityError as error:
        return HttpResponse(error.message, status=400)
    if request.htmx:
        return render(request, "community/post_detail.html#reactions", {
            "post": post, "reactions": selectors.reaction_counts(post=post),
            "mine": selectors.member_reactions(post=post, member=request.user),
        })
    return redirect(post)


@login_required
@require_POST
def post_pin(request: HttpRequest, pk: int) -> HttpResponse:
    post = get_object_or_404(Post, pk=pk)
    try:
        services.post_pin(post=post, member=request.user, pinned=not post.is_pinned)
    except exceptions.CommunityError as error:
        return render(request, "403.html", {"message": error.message}, status=403)
    return redirect(post)


@login_required
@require_POST
def post_hide(request: HttpRequest, pk: int) -> HttpResponse:
    post = get_object_or_404(Post, pk=pk)
    try:
        services.post_hide(post=post, member=request.user, hidden=not post.is_hidden)
    except exceptions.CommunityError as error:
        return render(request, "403.html", {"message": error.message}, status=403)
    return redirect(post)


@login_required
@require_POST
def follow(request: HttpRequest, pk: int) -> HttpResponse:
    other = get_object_or_404(get_user_model(), pk=pk, is_active=True)
    try:
        now_following = services.follow_toggle(follower=request.user, followed=other)
    except exceptions.CommunityError as error:
        return HttpResponse(error.message, status=400)
    if now_following:
        messages.success(request, _("You now follow %(name)s.") % {"name": other.name})
    next_url = request.POST.get("next", "")
    # Only a local path: redirect() would try any other text as a URL pattern name ("9999-12-31" → NoReverseMatch,
    # a 500 found by tests/test_forms_fuzz.py), and a header-breaking value must never reach Location.
    if not (next_url.startswith("/") and url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure())) \
            or any(c in next_url for c in "\r\n\\"):
        next_url = reverse("community:feed")
    return HttpResponseRedirect(next_url)


@login_required
@vary_on_headers("HX-Request")
def notifications(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.notification_list(member=request.user), NOTIFICATIONS_PAGE_SIZE).get_page(
        request.GET.get("page"))
    template = "community/notifications.html#list" if request.htmx and not request.htmx.history_restore_request else "community/notifications.html"
    return render(request, template, {"page": page})


@login_required
@require_POST
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    note = get_object_or_404(Notification, pk=pk, recipient=request.user)
    services.notification_mark_read(notification=note, member=request.user)
    if request.POST.get("go") and url_has_allowed_host_and_scheme(note.target_url, allowed_hosts={request.get_host()}):
        return redirect(note.target_url)
    return redirect("community:notifications")


@login_required
@require_POST
def notifications_read_all(request: HttpRequest) -> HttpResponse:
    services.notifications_mark_all_read(member=request.user)
    if request.htmx:
        page = Paginator(selectors.notification_list(member=request.user), NOTIFICATIONS_PAGE_SIZE).get_page(1)
        return render(request, "community/notifications.html#list", {"page": page, "unread_notifications": 0})
    return redirect("community:notifications")
