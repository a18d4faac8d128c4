from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from community.models import COMMENT_BODY_MAX_LENGTH, POST_BODY_MAX_LENGTH
from members.models import Course


class SiteForm(forms.Form):
    """Labels without the trailing colon: the stylesheet puts each label on its own line above the field."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class PostForm(SiteForm):
    title = forms.CharField(label=_("Title"), max_length=200)
    body = forms.CharField(label=_("Post"), widget=forms.Textarea(attrs={"rows": 6}), max_length=POST_BODY_MAX_LENGTH,
                           help_text=_("Markdown works: **bold**, *italic*, [links](https://…), lists. Mention people with @name."))
    course = forms.ModelChoiceField(label=_("Course (optional)"), required=False, queryset=Course.objects.none())

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["course"].queryset = Course.objects.filter(is_published=True, is_generic=False).order_by("title")


class PostEditForm(SiteForm):
    title = forms.CharField(label=_("Title"), max_length=200)
    body = forms.CharField(label=_("Post"), widget=forms.Textarea(attrs={"rows": 6}), max_length=POST_BODY_MAX_LENGTH)


class CommentForm(SiteForm):
    body = forms.CharField(label=_("Comment"), widget=forms.Textarea(attrs={"rows": 3}),
                           max_length=COMMENT_BODY_MAX_LENGTH)
    parent = forms.IntegerField(required=False, widget=forms.HiddenInput)
