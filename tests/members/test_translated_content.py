"""Content in the member's language: translated columns, the English fallback, the admin, the demo, covers."""
from __future__ import annotations

from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from members.demo import catalogue
from members.models import Benefit, Course, Lesson, MembershipTier, Topic
from tests.members.factories import CourseFactory, LessonFactory, TierFactory


def _zh(client) -> None:
    client.cookies["django_language"] = "zh-hans"


def test_course_and_lesson_text_follow_the_language_and_fall_back_to_english(client, db):
    course = CourseFactory(slug="sql", title_en="SQL for Analysts", title_zh_hans="给分析师的 SQL 课",
                           summary_en="Joins to windows.", summary_zh_hans="",  # no Chinese summary yet
                           description_en="Practise on real data.", description_zh_hans="用真实数据练习。",
                           is_published=True)
    LessonFactory(course=course, position=1, title_en="Why this matters", title_zh_hans="为什么这很重要",
                  body_en="English body", body_zh_hans="中文正文", is_preview=True)
    Topic.objects.create(slug="data", name_en="Data & analytics", name_zh_hans="数据分析")
    _zh(client)
    page = client.get(reverse("members:course_detail", args=["sql"])).content.decode()
    assert "给分析师的 SQL 课" in page and "用真实数据练习。" in page and "为什么这很重要" in page
    assert "Joins to windows." in page  # the missing translation falls back to English, not to nothing
    assert "数据分析" in page and "Practise on real data." not in page
    lesson = client.get(reverse("learning:lesson_detail", args=["sql", 1])).content.decode()
    assert "中文正文" in lesson and "English body" not in lesson
    client.cookies["django_language"] = "en"
    page = client.get(reverse("members:course_detail", args=["sql"])).content.decode()
    assert "SQL for Analysts" in page and "Data &amp; analytics" in page and "给分析师的 SQL 课" not in page


def test_tier_and_benefit_text_are_translated_on_the_membership_page(client, db):
    tier = TierFactory(slug="plus", name_en="Plus", name_zh_hans="进阶会员", description_en="Every course.",
                       description_zh_hans="包含全部课程。")
    Benefit.objects.create(tier=tier, kind=Benefit.Kind.ALL_COURSES, description_en="Every course in the catalogue",
                           description_zh_hans="课程库中的全部课程")
    _zh(client)
    page = client.get(reverse("members:tiers")).content.decode()
    assert "进阶会员" in page
    with translation.override("zh-hans"):
        assert MembershipTier.objects.get(pk=tier.pk).description == "包含全部课程。"
        assert Benefit.objects.get(tier=tier).description == "课程库中的全部课程"


def test_catalogue_topic_filter_shows_topic_names_in_the_language_with_the_same_query_count(
    client, db, django_assert_num_queries
):
    for _ in range(3):
        CourseFactory(topic="data", is_published=True)
    Topic.objects.create(slug="data", name_en="Data & analytics", name_zh_hans="数据分析")
    _zh(client)
    with django_assert_num_queries(3):  # topics, count, page: the names come in the same queries (a subquery)
        page = client.get(reverse("members:course_list")).content.decode()
    assert '<option value="data">数据分析</option>' in page


def test_admin_edits_both_languages_side_by_side(client, charlie):
    course = CourseFactory(title_en="SQL", title_zh_hans="SQL 课")
    client.force_login(charlie)
    page = client.get(reverse("admin:members_course_change", args=[course.pk])).content.decode()
    for field in ("title_en", "title_zh_hans", "summary_en", "summary_zh_hans", "description_zh_hans",
                  "audience_zh_hans"):
        assert f'name="{field}"' in page
    assert page.index('name="title_en"') < page.index('name="title_zh_hans"') < page.index('name="summary_en"')
    tier_page = client.get(reverse("admin:members_membershiptier_add")).content.decode()
    assert 'name="name_zh_hans"' in tier_page and 'name="benefits-0-description_zh_hans"' in tier_page


def test_demo_ships_both_languages_for_every_course_lesson_topic_tier_and_benefit(db):
    call_command("seed_demo", members=20, months=2, seed=3, no_progress=True, verbosity=0)
    for model, fields in ((Course, ("title", "summary", "description", "audience")), (Lesson, ("title", "body")),
                          (Topic, ("name",)), (MembershipTier, ("name", "description")), (Benefit, ("description",))):
        rows = model.objects.all()
        assert rows.exists()
        for row in rows:
            for field in fields:
                assert getattr(row, f"{field}_en"), (model, row.pk, field)
                assert getattr(row, f"{field}_zh_hans"), (model, row.pk, field)
    assert not any(s.startswith("A a") for s in map(catalogue.course_summary, catalogue.COURSES))
    assert any(s.startswith("An advanced") for s in map(catalogue.course_summary, catalogue.COURSES))
    # The Chinese columns hold Chinese only: the English text is not repeated in them.
    assert not Course.objects.filter(description_zh_hans__contains=" is taught by ").exists()


def test_course_cards_show_the_uploaded_cover_or_a_generated_one(client, db, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = tmp_path
    plain = CourseFactory(title="Plain", is_published=True)
    covered = CourseFactory(title="Covered", is_published=True)
    # A 1×1 GIF is a valid image for Pillow's check.
    covered.cover = SimpleUploadedFile("c.gif", b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9"
                                       b"\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;",
                                       content_type="image/gif")
    covered.save()
    page = client.get(reverse("members:course_list")).content.decode()
    assert f'src="/media/covers/{covered.slug}/' in page
    first = client.get(reverse("members:course_detail", args=[plain.slug])).content.decode()
    again = client.get(reverse("members:course_detail", args=[plain.slug])).content.decode()
    svg = first.split('<div class="course-hero">', 1)[1].split("</svg>", 1)[0]
    assert svg.startswith("<svg") and svg in again  # generated, and the same every time


def test_a_course_created_while_chinese_is_active_still_has_its_english_title(db):
    with translation.override("zh-hans"):
        course = Course.objects.create(title="Written in a Chinese request", slug="zh-made")
    course.refresh_from_db()
    assert course.title_en == "Written in a Chinese request"
    with translation.override("en"):
        assert str(Course.objects.get(pk=course.pk)) == "Written in a Chinese request"


def test_api_title_zh_reads_the_translated_chinese_title(client, db):
    CourseFactory(slug="sql", title_en="SQL", title_zh_hans="SQL 课", title_zh="", is_published=True)
    CourseFactory(slug="old", title_en="Old", title_zh_hans=None, title_zh="旧课", is_published=True)
    rows = {c["slug"]: c["title_zh"] for c in client.get("/api/v1/courses/").json()["results"]}
    assert rows == {"sql": "SQL 课", "old": "旧课"}
