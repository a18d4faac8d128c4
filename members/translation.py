"""Which members fields are translated (django-modeltranslation: one column per language on the same row).

Why modeltranslation and not django-parler: parler keeps translations in a side table, so every list page joins
or prefetches it — one more query per translated model on pages whose query counts are pinned by tests
(catalogue, home, membership). modeltranslation adds `<field>_en` / `<field>_zh_hans` columns and rewrites
`title` to the active language's column with a fallback to English, so queries stay flat.
"""
from __future__ import annotations

from modeltranslation.translator import TranslationOptions, register

from members.models import Benefit, Course, Lesson, MembershipTier, Topic


@register(Course)
class CourseTranslation(TranslationOptions):
    fields = ("title", "summary", "description", "audience")


@register(Lesson)
class LessonTranslation(TranslationOptions):
    fields = ("title", "body")


@register(Topic)
class TopicTranslation(TranslationOptions):
    fields = ("name",)


@register(MembershipTier)
class TierTranslation(TranslationOptions):
    fields = ("name", "description")


@register(Benefit)
class BenefitTranslation(TranslationOptions):
    fields = ("description",)
