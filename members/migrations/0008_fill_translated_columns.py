"""Data migration: the existing text becomes the English column; Course.title_zh (the older field) the Chinese
title; one Topic row per topic code already used by a course."""
from __future__ import annotations

from django.db import migrations

FIELDS = {
    "Course": ("title", "summary", "description", "audience"),
    "Lesson": ("title", "body"),
    "MembershipTier": ("name", "description"),
    "Benefit": ("description",),
}
# The demo platform's topic codes; any other code gets its own spelling as the English name.
KNOWN_TOPICS = {
    "data": ("Data & analytics", "数据分析"), "product": ("Product management", "产品管理"),
    "design": ("Design", "设计"), "writing": ("Writing & content", "写作与内容"),
    "finance": ("Personal finance", "个人理财"), "language": ("Languages", "语言学习"),
    "career": ("Career growth", "职业发展"), "ai": ("AI in practice", "人工智能实战"),
}


def forwards(apps, schema_editor):
    from django.db.models import F

    for model_name, fields in FIELDS.items():
        model = apps.get_model("members", model_name)
        model.objects.update(**{f"{field}_en": F(field) for field in fields})
    Course = apps.get_model("members", "Course")
    Course.objects.exclude(title_zh="").update(title_zh_hans=F("title_zh"))
    Topic = apps.get_model("members", "Topic")
    codes = Course.objects.exclude(topic="").values_list("topic", flat=True).distinct()
    for code in sorted(set(codes)):
        en, zh = KNOWN_TOPICS.get(code, (code.replace("-", " ").capitalize(), ""))
        Topic.objects.get_or_create(slug=code[:60], defaults={"name": en, "name_en": en, "name_zh_hans": zh})


def backwards(apps, schema_editor):
    # The original columns were never changed; the translated columns disappear with the schema migration.
    pass


class Migration(migrations.Migration):
    dependencies = [("members", "0007_translated_content_topics_covers_consent")]
    operations = [migrations.RunPython(forwards, backwards)]
