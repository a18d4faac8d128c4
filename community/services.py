"""Writes for the community app: posts, comments, reactions, follows, notifications.

Every function is keyword-only; the web views and the REST API call the same ones. Bodies are rendered and
sanitised on write (community.markdown.render_markdown) so no page ever renders raw member input — before the
transaction opens, never inside it: on SQLite a write transaction holds the database's only write lock, so a slow
render inside one made other members' comments fail with "database is locked" (issue 13.6). Each write records an
analytics event on commit.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from analytics.tracking import record_event
from community import exceptions
from community.markdown import RENDERER_VERSION, render_markdown
from community.models import (
    COMMENT_BODY_MAX_LENGTH,
    POST_BODY_MAX_LENGTH,
    Comment,
    Follow,
    Notification,
    Post,
    Reaction,
)

User = get_user_model()

# "@alice" or "@alice.smith": a display name without spaces, or the local part of an email address.
MENTION_RE = re.compile(r"(?<![\w@])@([\w][\w.\-]{0,63})", re.UNICODE)
MAX_MENTIONS = 10


# --------------------------------------------------------------------------------------------------------------
# Helpers


def _require_owner(*, obj: Post | Comment, member: object) -> None:
    """Author or staff. An authorless post or comment (its author deleted their account) has no owner: only staff
    may delete it. Without the None check an anonymous caller (pk None) would "own" it."""
    if getattr(member, "is_staff", False):
        return
    if obj.author_id is None or obj.author_id != getattr(member, "pk", None):
        raise exceptions.NotAllowed()


def _require_editable(*, obj: Post | Comment, member: object) -> None:
    if not obj.can_edit(member):
        raise exceptions.AuthorDeleted() if obj.author_id is None else exceptions.NotAllowed()


def _require_staff(*, member: object) -> None:
    if not getattr(member, "is_staff", False):
        raise exceptions.StaffOnly()


def mentioned_members(*, text: str, exclude: Iterable[int] = ()) -> list:
    """Members named by @handle in text: exact display name (case-insensitive) or email local part."""
    handles = []
    for handle in MENTION_RE.findall(text or ""):
        handle = handle.rstrip(".-")
        if handle and handle.lower() not in handles:
            handles.append(handle.lower())
    handles = handles[:MAX_MENTIONS]
    if not handles:
        return []
    query = Q()
    for handle in handles:
        query |= Q(display_name__iexact=handle) | Q(email__istartswith=f"{handle}@")
    return list(User.objects.filter(query, is_active=True).exclude(pk__in=list(exclude)).order_by("pk"))


def _notify(
    *, recipient_id: int | None, actor: object, verb: str, target: Post | Comment, url: str, text: str = ""
) -> Notification | None:
    # recipient_id is None when the post or comment answered belongs to a deleted member: nobody to tell.
    if recipient_id is None or recipient_id == getattr(actor, "pk", None):
        return None
    # Stored as a code (verb) with parameters; the sentence is written in the reader's language when shown.
    params = {"reaction": text} if verb == Notification.Verb.REACTED else {"excerpt": text[:300]} if text else {}
    return Notification.objects.create(
        recipient_id=recipient_id, actor=actor, verb=verb, target_type=target._meta.model_name,
        target_id=target.pk, target_url=url, params=params,
    )


def _notify_mentions(*, text: str, actor: object, target: Post | Comment, url: str, already: set[int]) -> list[int]:
    notified = []
    for member in mentioned_members(text=text, exclude={getattr(actor, "pk", 0), *already}):
        _notify(recipient_id=member.pk, actor=actor, verb=Notification.Verb.MENTIONED, target=target, url=url,
                text=text[:120])
        notified.append(member.pk)
    if notified:
        record_event(member=actor, kind="members_mentioned", obj=target, properties={"mentioned": notified})
    return notified


# --------------------------------------------------------------------------------------------------------------
# Posts


def _rendered(body: str, limit: int) -> str:
    """The sanitised HTML of a body within its limit. Called outside any transaction (see the module docstring)."""
    if len(body) > limit:
        raise exceptions.BodyTooLong()
    return render_markdown(body)


def post_create(*, author: object, title: str, body: str, course: object | None = None) -> Post:
    body_html = _rendered(body, POST_BODY_MAX_LENGTH)
    with transaction.atomic():
        return _post_create(author=author, title=title, body=body, body_html=body_html, course=course)


def _post_create(*, author: object, title: str, body: str, body_html: str, course: object | None) -> Post:
    post = Post.objects.create(
        author=author, title=title.strip()[:200], body=body, body_html=body_html,
        body_rendered_with=RENDERER_VERSION, course=course,
    )
    _notify_mentions(text=body, actor=author, target=post, url=post.get_absolute_url(), already=set())
    record_event(member=author, kind="post_created", obj=post,
                 properties={"course_id": getattr(course, "pk", None)})
    return post


def post_update(*, post: Post, member: object, title: str, body: str) -> Post:
    """The author (or staff) edits a post; nobody edits an authorless one. Newly mentioned members are notified;
    earlier ones are not again."""
    _require_editable(obj=post, member=member)
    body_html = _rendered(body, POST_BODY_MAX_LENGTH)
    with transaction.atomic():
        return _post_update(post=post, member=member, title=title, body=body, body_html=body_html)


def _post_update(*, post: Post, member: object, title: str, body: str, body_html: str) -> Post:
    before = {m.pk for m in mentioned_members(text=post.body)}
    post.title = title.strip()[:200]
    post.body = body
    post.body_html = body_html
    post.body_rendered_with = RENDERER_VERSION
    post.save(update_fields=["title", "body", "body_html", "body_rendered_with", "updated_at"])
    _notify_mentions(text=body, actor=member, target=post, url=post.get_absolute_url(), already=before)
    record_event(member=member, kind="post_updated", obj=post)
    return post


@transaction.atomic
def post_delete(*, post: Post, member: object) -> None:
    _require_owner(obj=post, member=member)
    record_event(member=member, kind="post_deleted", object_type="post", object_id=post.pk)
    Notification.objects.filter(target_type="post", target_id=post.pk).delete()
    post.delete()


def post_pin(*, post: Post, member: object, pinned: bool = True) -> Post:
    _require_staff(member=member)
    Post.objects.filter(pk=post.pk).update(is_pinned=pinned)
    post.is_pinned = pinned
    record_event(member=member, kind="post_pinned" if pinned else "post_unpinned", obj=post)
    return post


def post_hide(*, post: Post, member: object, hidden: bool = True) -> Post:
    _require_staff(member=member)
    Post.objects.filter(pk=post.pk).update(is_hidden=hidden)
    post.is_hidden = hidden
    record_event(member=member, kind="post_hidden" if hidden else "post_unhidden", obj=post)
    return post


# --------------------------------------------------------------------------------------------------------------
# Comments


def comment_create(*, post: Post, author: object, body: str, parent: Comment | None = None) -> Comment:
    """Comment on a post, or reply to a comment. One level of replies: a reply to a reply attaches to the
    top-level comment, so threads never nest deeper than the page can show."""
    body_html = _rendered(body, COMMENT_BODY_MAX_LENGTH)
    with transaction.atomic():
        return _comment_create(post=post, author=author, body=body, body_html=body_html, parent=parent)


def _comment_create(*, post: Post, author: object, body: str, body_html: str, parent: Comment | None) -> Comment:
    if parent is not None:
        if parent.post_id != post.pk:
            raise exceptions.InvalidTarget()
        if parent.parent_id is not None:
            parent = Comment.objects.get(pk=parent.parent_id)
    comment = Comment.objects.create(post=post, author=author, parent=parent, body=body, body_html=body_html,
                                     body_rendered_with=RENDERER_VERSION)
    url = f"{post.get_absolute_url()}#comment-{comment.pk}"
    notified: set[int] = {getattr(author, "pk", 0)}
    if parent is not None and parent.author_id is not None and parent.author_id not in notified:
        _notify(recipient_id=parent.author_id, actor=author, verb=Notification.Verb.REPLIED, target=comment, url=url,
                text=body[:120])
        notified.add(parent.author_id)
    if post.author_id is not None and post.author_id not in notified:
        _notify(recipient_id=post.author_id, actor=author, verb=Notification.Verb.COMMENTED, target=comment, url=url,
                text=body[:120])
        notified.add(post.author_id)
    _notify_mentions(text=body, actor=author, target=comment, url=url, already=notified)
    record_event(member=author, kind="comment_created", obj=comment,
                 properties={"post_id": post.pk, "parent_id": getattr(parent, "pk", None)})
    return comment


def comment_update(*, comment: Comment, member: object, body: str) -> Comment:
    _require_editable(obj=comment, member=member)
    body_html = _rendered(body, COMMENT_BODY_MAX_LENGTH)
    with transaction.atomic():
        comment.body = body
        comment.body_html = body_html
        comment.body_rendered_with = RENDERER_VERSION
        comment.save(update_fields=["body", "body_html", "body_rendered_with", "updated_at"])
        record_event(member=member, kind="comment_updated", obj=comment)
    return comment


@transaction.atomic
def comment_delete(*, comment: Comment, member: object) -> None:
    _require_owner(obj=comment, member=member)
    record_event(member=member, kind="comment_deleted", object_type="comment", object_id=comment.pk,
                 properties={"post_id": comment.post_id})
    ids = [comment.pk, *comment.replies.values_list("pk", flat=True)]
    Notification.objects.filter(target_type="comment", target_id__in=ids).delete()
    comment.delete()


def comment_hide(*, comment: Comment, member: object, hidden: bool = True) -> Comment:
    _require_staff(member=member)
    Comment.objects.filter(pk=comment.pk).update(is_hidden=hidden)
    comment.is_hidden = hidden
    record_event(member=member, kind="comment_hidden" if hidden else "comment_unhidden", obj=comment)
    return comment


@transaction.atomic
def author_erase(*, member_id: int) -> dict[str, int]:
    """A member's account is being erased (members.privacy.services.member_delete): their posts and comments stay
    in their threads, so other members' comments, replies and reactions under them survive, but are detached from
    the account (author NULL, shown as "Deleted member") and their words go: post title and body, comment body.

    Returns how many posts and comments were anonymised. Reactions, follows and notifications of the member are
    not touched here; member_delete deletes those rows.
    """
    posts = Post.objects.filter(author_id=member_id).update(author=None, title="", body="", body_html="")
    comments = Comment.objects.filter(author_id=member_id).update(author=None, body="", body_html="")
    return {"posts": posts, "comments": comments}


# --------------------------------------------------------------------------------------------------------------
# Reactions and follows


def reaction_toggle(
    *, member: object, post: Post | None = None, comment: Comment | None = None, kind: str = Reaction.Kind.LIKE
) -> bool:
    """Add the reaction if absent, remove it if present. Returns True when the reaction now exists.

    Two fast clicks race on the partial unique constraint: the loser's INSERT fails and is read as "already there".
    """
    if (post is None) == (comment is None):
        raise exceptions.InvalidTarget()
    if kind not in Reaction.Kind.values:
        raise exceptions.InvalidTarget()
    target = {"post": post} if post is not None else {"comment": comment}
    deleted, _ = Reaction.objects.filter(member=member, kind=kind, **target).delete()
    if deleted:
        record_event(member=member, kind="reaction_removed", obj=post or comment, properties={"reaction": kind})
        return False
    try:
        with transaction.atomic():
            Reaction.objects.create(member=member, kind=kind, **target)
    except IntegrityError:
        return True
    owner_id = (post or comment).author_id  # type: ignore[union-attr]
    if post is not None:
        _notify(recipient_id=owner_id, actor=member, verb=Notification.Verb.REACTED, target=post,
                url=post.get_absolute_url(), text=kind)
    record_event(member=member, kind="reaction_added", obj=post or comment, properties={"reaction": kind})
    return True


def follow_toggle(*, follower: object, followed: object) -> bool:
    """Follow or unfollow. Returns True when the follower now follows."""
    if getattr(follower, "pk", None) == getattr(followed, "pk", None):
        raise exceptions.CannotFollowSelf()
    deleted, _ = Follow.objects.filter(follower=follower, followed=followed).delete()
    if deleted:
        record_event(member=follower, kind="member_unfollowed", object_type="user", object_id=followed.pk)
        return False
    try:
        with transaction.atomic():
            Follow.objects.create(follower=follower, followed=followed)
    except IntegrityError:
        return True
    Notification.objects.create(recipient=followed, actor=follower, verb=Notification.Verb.FOLLOWED,
                                target_type="user", target_id=follower.pk)
    record_event(member=follower, kind="member_followed", object_type="user", object_id=followed.pk)
    return True


# --------------------------------------------------------------------------------------------------------------
# Notifications


def notification_mark_read(*, notification: Notification, member: object) -> Notification:
    if notification.recipient_id != getattr(member, "pk", None):
        raise exceptions.NotAllowed()
    if notification.read_at is None:
        notification.read_at = timezone.now()
        if Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=notification.read_at):
            record_event(member=member, kind="notification_read", obj=notification,
                         properties={"verb": notification.verb})
    return notification


def notifications_mark_all_read(*, member: object) -> int:
    count = Notification.objects.filter(recipient=member, read_at__isnull=True).update(read_at=timezone.now())
    if count:
        record_event(member=member, kind="notifications_read_all", properties={"count": count})
    return count
