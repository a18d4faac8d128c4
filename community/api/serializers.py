"""Input and output serializers for the community API. Output carries `body_html`, rendered and sanitised on write
by community.services, so API clients never receive unsanitised HTML; `body` (the Markdown source) is returned
for editing."""
from __future__ import annotations

from rest_framework import serializers

from community.models import COMMENT_BODY_MAX_LENGTH, POST_BODY_MAX_LENGTH, Comment, Notification, Post, Reaction


class AuthorOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ContentAuthorOutput(serializers.Serializer):
    """Who wrote a post or comment. Read from the post/comment itself (source="*") so a deleted member's content
    still carries an author object: `{"id": null, "name": "Deleted member"}` (name translated)."""

    id = serializers.IntegerField(source="author_id", allow_null=True,
                                  help_text="null when the author deleted their account.")
    name = serializers.CharField(source="author_name")


class PostListOutput(serializers.ModelSerializer):
    author = ContentAuthorOutput(source="*", read_only=True)
    course = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    comment_count = serializers.IntegerField(read_only=True)
    reaction_count = serializers.IntegerField(read_only=True)
    liked = serializers.SerializerMethodField()

    class Meta:
        model = Post
        fields = ["id", "title", "author", "course", "body_html", "is_pinned", "is_hidden", "created_at",
                  "updated_at", "comment_count", "reaction_count", "liked"]

    def get_liked(self, obj: Post) -> bool:
        return bool(getattr(obj, "liked", False))


class ReplyOutput(serializers.ModelSerializer):
    author = ContentAuthorOutput(source="*", read_only=True)

    class Meta:
        model = Comment
        fields = ["id", "author", "parent", "body", "body_html", "is_hidden", "created_at", "updated_at"]


class CommentOutput(serializers.ModelSerializer):
    author = ContentAuthorOutput(source="*", read_only=True)
    replies = ReplyOutput(many=True, read_only=True)

    class Meta:
        model = Comment
        fields = ["id", "author", "parent", "body", "body_html", "is_hidden", "created_at", "updated_at", "replies"]


class PostDetailOutput(PostListOutput):
    comments = CommentOutput(many=True, read_only=True, source="top_comments")

    class Meta(PostListOutput.Meta):
        fields = [*PostListOutput.Meta.fields, "body", "comments"]


class FeedQueryInput(serializers.Serializer):
    scope = serializers.ChoiceField(choices=["all", "following"], default="all",
                                    help_text="`following`: posts by people I follow.")
    course = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1,
                                      help_text="Only posts about this course id.")


class PostCreateInput(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(max_length=POST_BODY_MAX_LENGTH)
    course = serializers.SlugField(required=False, allow_null=True, help_text="Course slug the post is about.")


class PostUpdateInput(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False)
    body = serializers.CharField(max_length=POST_BODY_MAX_LENGTH, required=False)


class FlagInput(serializers.Serializer):
    value = serializers.BooleanField(default=True, help_text="True to pin/hide, false to undo.")


class CommentCreateInput(serializers.Serializer):
    body = serializers.CharField(max_length=COMMENT_BODY_MAX_LENGTH)
    parent = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=2**63 - 1,
                                      help_text="Comment id to reply to (replies are one level deep).")


class CommentUpdateInput(serializers.Serializer):
    body = serializers.CharField(max_length=COMMENT_BODY_MAX_LENGTH)


class ReactionInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Reaction.Kind.choices, default=Reaction.Kind.LIKE)


class ReactionOutput(serializers.Serializer):
    kind = serializers.CharField()
    active = serializers.BooleanField(help_text="Whether my reaction of this kind now exists.")


class NotificationOutput(serializers.ModelSerializer):
    actor = AuthorOutput(read_only=True, allow_null=True)
    is_read = serializers.SerializerMethodField()
    message = serializers.CharField(read_only=True, help_text="The sentence in the request's language.")
    text = serializers.CharField(source="excerpt", read_only=True, help_text="What the actor wrote, if anything.")

    class Meta:
        model = Notification
        fields = ["id", "actor", "verb", "params", "message", "target_type", "target_id", "target_url", "text",
                  "created_at", "read_at", "is_read"]

    def get_is_read(self, obj: Notification) -> bool:
        return obj.read_at is not None


class MarkAllReadOutput(serializers.Serializer):
    marked = serializers.IntegerField()


class FollowOutput(serializers.Serializer):
    following = serializers.BooleanField(help_text="Whether I now follow this member.")
