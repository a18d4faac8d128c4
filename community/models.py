"""Community owns posts, comments, reactions, follows and notifications."""
from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

# Characters. A post is an article at most (20,000 is about 3,000 English words); a comment is a reply. The forms, the
# API serializers, the models' validators and the services all hold these, so no door accepts a longer body.
POST_BODY_MAX_LENGTH = 20_000
COMMENT_BODY_MAX_LENGTH = 5_000


class AuthoredMixin:
    """Posts and comments outlive their author: deleting a member sets `author` to NULL (so other members' replies
    under the post stay) and the page, the API and the admin show "Deleted member" in their place."""

    author_id: int | None
    author: models.Model | None

    @property
    def author_name(self) -> str:
        # gettext at call time, not at import: the viewer's language, not the server's.
        return self.author.name if self.author is not None else gettext("Deleted member")  # type: ignore[attr-defined]

    @property
    def is_erased(self) -> bool:
        """Its author's account was erased and the words went with it (community.services.author_erase)."""
        return self.author_id is None and not self.body  # type: ignore[attr-defined]

    def can_edit(self, member: object) -> bool:
        """The author (or staff) may edit; nobody edits an authorless post or comment, since no one may put words
        in a deleted member's mouth. Staff can still hide or delete it."""
        if self.author_id is None or not getattr(member, "is_authenticated", False):
            return False
        return self.author_id == getattr(member, "pk", None) or bool(getattr(member, "is_staff", False))


class Post(AuthoredMixin, models.Model):
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="posts"
, db_index=False)
    course = models.ForeignKey(
        "members.Course", null=True, blank=True, on_delete=models.SET_NULL, related_name="posts"
    )
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"), help_text=_("Markdown."), max_length=POST_BODY_MAX_LENGTH,
                            validators=[MaxLengthValidator(POST_BODY_MAX_LENGTH)])
    # Rendered and sanitised once on write (community.markdown.render_markdown), so pages never render raw input.
    body_html = models.TextField(editable=False, blank=True)
    # community.markdown.RENDERER_VERSION that produced body_html (0: before the version was recorded).
    body_rendered_with = models.PositiveSmallIntegerField(default=0, editable=False)
    is_pinned = models.BooleanField(_("pinned"), default=False)
    is_hidden = models.BooleanField(_("hidden"), default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_pinned", "-created_at"]
        indexes = [models.Index(fields=["author", "created_at"], name="post_author_created")]

    def __str__(self) -> str:
        return self.display_title

    def get_absolute_url(self) -> str:
        return reverse("community:post_detail", kwargs={"pk": self.pk})

    @property
    def display_title(self) -> str:
        # Empty only after its author's account was erased (community.services.author_erase).
        return self.title or gettext("Removed post")


class Comment(AuthoredMixin, models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="comments"
, db_index=False)
    # One level of replies: a reply's parent is always a top-level comment (enforced in services).
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies")
    body = models.TextField(_("comment"), max_length=COMMENT_BODY_MAX_LENGTH,
                            validators=[MaxLengthValidator(COMMENT_BODY_MAX_LENGTH)])
    body_html = models.TextField(editable=False, blank=True)
    body_rendered_with = models.PositiveSmallIntegerField(default=0, editable=False)
    is_hidden = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["author", "created_at"], name="comment_author_created")]

    def __str__(self) -> str:
        return f"{self.author_name} on {self.post}"


class Reaction(models.Model):
    class Kind(models.TextChoices):
        LIKE = "like", _("Like")
        INSIGHTFUL = "insightful", _("Insightful")
        THANKS = "thanks", _("Thanks")

    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reactions")
    post = models.ForeignKey(Post, null=True, blank=True, on_delete=models.CASCADE, related_name="reactions")
    comment = models.ForeignKey(Comment, null=True, blank=True, on_delete=models.CASCADE, related_name="reactions")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.LIKE)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(post__isnull=False) & Q(comment__isnull=True)) | (Q(post__isnull=True) & Q(comment__isnull=False)),
                name="reaction_has_one_target",
            ),
            models.UniqueConstraint(
                fields=["member", "post", "kind"], condition=Q(post__isnull=False), name="one_reaction_kind_per_post"
            ),
            models.UniqueConstraint(
                fields=["member", "comment", "kind"], condition=Q(comment__isnull=False), name="one_reaction_kind_per_comment"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member} {self.kind}"


class Follow(models.Model):
    follower = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="following", db_index=False)
    followed = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="followers")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["follower", "followed"], name="unique_follow"),
            models.CheckConstraint(condition=~Q(follower=models.F("followed")), name="no_self_follow"),
        ]

    def __str__(self) -> str:
        return f"{self.follower} follows {self.followed}"


class Notification(models.Model):
    class Verb(models.TextChoices):
        REPLIED = "replied", _("replied to you")
        COMMENTED = "commented", _("commented on your post")
        MENTIONED = "mentioned", _("mentioned you")
        REACTED = "reacted", _("reacted to your post")
        FOLLOWED = "followed", _("followed you")
        SYSTEM = "system", _("system")

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications", db_index=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    verb = models.CharField(max_length=20, choices=Verb.choices)
    target_type = models.CharField(max_length=40, blank=True)
    target_id = models.PositiveBigIntegerField(null=True, blank=True)
    target_url = models.CharField(max_length=300, blank=True)
    # Legacy: rows written before `params` held a ready-made sentence or excerpt here; still shown, quoted.
    text = models.CharField(max_length=300, blank=True)
    # The sentence is built from `verb` + `params` when it is shown, in the viewer's language (message()).
    params = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["recipient", "read_at", "created_at"], name="notification_inbox")]

    def __str__(self) -> str:
        return f"{self.actor} {self.get_verb_display()} → {self.recipient}"

    def message(self) -> str:
        """The sentence in the active language, built from the verb and the actor at display time."""
        actor = self.actor.name if self.actor_id and self.actor else gettext("Someone")
        if self.verb == self.Verb.REPLIED:
            return gettext("%(actor)s replied to your comment") % {"actor": actor}
        if self.verb == self.Verb.COMMENTED:
            return gettext("%(actor)s commented on your post") % {"actor": actor}
        if self.verb == self.Verb.MENTIONED:
            return gettext("%(actor)s mentioned you") % {"actor": actor}
        if self.verb == self.Verb.REACTED:
            kind = self.params.get("reaction") or (self.text if self.text in Reaction.Kind.values else "")
            if kind in Reaction.Kind.values:
                return gettext("%(actor)s reacted to your post: %(reaction)s") % {
                    "actor": actor, "reaction": Reaction.Kind(kind).label}
            return gettext("%(actor)s reacted to your post") % {"actor": actor}
        if self.verb == self.Verb.FOLLOWED:
            return gettext("%(actor)s started following you") % {"actor": actor}
        return str(self.params.get("message") or self.text or self.get_verb_display())

    def excerpt(self) -> str:
        """What the member wrote, quoted under the sentence. Rows from before `params` kept it (or, for demo rows,
        a whole English or Chinese sentence that repeats message()) in `text`: a sentence is not repeated."""
        if "excerpt" in self.params:
            return str(self.params["excerpt"])
        if self.verb in (self.Verb.REACTED, self.Verb.FOLLOWED, self.Verb.SYSTEM) or not self.text:
            return ""
        if self.actor_id and self.actor and self.text.startswith(self.actor.name):
            return ""
        return self.text
