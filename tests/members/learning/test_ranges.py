"""HTTP range requests on lesson media: 206 with the right bytes, 416 for unsatisfiable ranges, 403 for others."""
from __future__ import annotations

import pytest
from django.urls import reverse

from members.learning.ranges import RangeNotSatisfiable, parse_range
from tests.members.learning.conftest import MEDIA_BYTES


def media_url(lesson) -> str:
    return reverse("learning:lesson_media", args=[lesson.course.slug, lesson.position])


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-99", (0, 99)), ("bytes=900-", (900, 999)), ("bytes=-10", (990, 999)), ("bytes=990-5000", (990, 999)),
    ("bytes=-5000", (0, 999)), ("items=0-1", None), ("bytes=0-1,5-6", None), ("bytes=-", None), ("bytes=20-10", None),
])
def test_parse_range(header, expected):
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_parse_range_unsatisfiable(header):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


def test_whole_file_without_range_says_it_accepts_ranges(client, owner, video_lesson):
    client.force_login(owner)
    response = client.get(media_url(video_lesson))
    assert response.status_code == 200
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Length"] == "1000"
    assert response["Content-Type"] == "video/webm"
    assert "private" in response["Cache-Control"]
    assert body(response) == MEDIA_BYTES


@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=0-99", 0, 99), ("bytes=100-199", 100, 199), ("bytes=950-", 950, 999), ("bytes=-7", 993, 999),
    ("bytes=998-4000", 998, 999),
])
def test_it_answers_a_range_with_206_and_exactly_those_bytes(client, owner, video_lesson, header, start, end):
    client.force_login(owner)
    response = client.get(media_url(video_lesson), headers={"Range": header})
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/1000"
    assert response["Content-Length"] == str(end - start + 1)
    assert response["Accept-Ranges"] == "bytes"
    assert body(response) == MEDIA_BYTES[start:end + 1]


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=2000-3000"])
def test_it_refuses_an_unsatisfiable_range_with_416(client, owner, video_lesson, header):
    client.force_login(owner)
    response = client.get(media_url(video_lesson), headers={"Range": header})
    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */1000"
    assert response.content == b""


@pytest.mark.parametrize("header", ["bytes=0-1,5-9", "lines=1-2", "bytes=abc"])
def test_it_ignores_ranges_it_does_not_serve_and_sends_the_whole_file(client, owner, video_lesson, header):
    client.force_login(owner)
    response = client.get(media_url(video_lesson), headers={"Range": header})
    assert response.status_code == 200
    assert body(response) == MEDIA_BYTES


def test_if_range_with_a_stale_validator_gets_the_whole_file(client, owner, video_lesson):
    client.force_login(owner)
    etag = client.get(media_url(video_lesson))["ETag"]
    fresh = client.get(media_url(video_lesson), headers={"Range": "bytes=0-9", "If-Range": etag})
    stale = client.get(media_url(video_lesson), headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert fresh.status_code == 206
    assert stale.status_code == 200


def test_head_gives_headers_without_body(client, owner, video_lesson):
    client.force_login(owner)
    response = client.head(media_url(video_lesson), headers={"Range": "bytes=10-19"})
    assert response.status_code == 206
    assert response["Content-Length"] == "10"
    assert response.content == b""


def test_it_refuses_media_to_members_without_access_and_to_visitors(client, bob, video_lesson):
    assert client.get(media_url(video_lesson), headers={"Range": "bytes=0-9"}).status_code == 403
    client.force_login(bob)
    response = client.get(media_url(video_lesson), headers={"Range": "bytes=0-9"})
    assert response.status_code == 403
    assert MEDIA_BYTES[:10] not in response.content


def test_media_file_has_no_public_url(video_lesson):
    with pytest.raises(ValueError, match="no public URL"):
        video_lesson.media_file.url  # noqa: B018


def test_lesson_without_a_file_is_404(client, owner, course):
    from tests.members.factories import LessonFactory

    lesson = LessonFactory(course=course, position=2)
    client.force_login(owner)
    assert client.get(media_url(lesson)).status_code == 404
