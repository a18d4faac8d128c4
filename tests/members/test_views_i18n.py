"""Both languages: the committed Simplified Chinese catalogue is complete, and pages switch language."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

PO = Path(__file__).resolve().parents[2] / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def _entries() -> list[tuple[str, str, bool]]:
    text = PO.read_text(encoding="utf-8")
    out = []
    for block in text.split("\n\n")[1:]:
        msgid = re.search(r'^msgid ((?:".*"\n?)+)', block + "\n", re.MULTILINE)
        if not msgid:
            continue
        strings = re.search(r'^msgstr(?:\[0\])? ((?:".*"\n?)+)', block + "\n", re.MULTILINE)
        out.append((
            "".join(re.findall(r'^"(.*)"$', msgid.group(1), re.MULTILINE)),
            "".join(re.findall(r'^"(.*)"$', strings.group(1), re.MULTILINE)) if strings else "",
            any(line.startswith("#,") and "fuzzy" in line for line in block.splitlines()),
        ))
    return out


def test_every_catalogue_entry_has_a_chinese_translation():
    entries = _entries()
    assert len(entries) > 300
    untranslated = [msgid for msgid, msgstr, fuzzy in entries if not msgstr or fuzzy]
    assert untranslated == []


def test_placeholders_survive_translation():
    for msgid, msgstr, _fuzzy in _entries():
        assert sorted(re.findall(r"%\(\w+\)[sd]", msgid)) == sorted(re.findall(r"%\(\w+\)[sd]", msgstr)), msgid


@pytest.mark.django_db
def test_language_switcher_sets_chinese(client):
    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": "/courses/"})
    assert response.status_code == 302
    body = client.get("/courses/").content.decode()
    assert 'lang="zh-hans"' in body and "课程" in body and "搜索课程" in body


@pytest.mark.django_db
def test_member_language_preference_applies_without_cookie(client, alice):
    alice.preferred_language = "zh-hans"
    alice.save()
    client.force_login(alice)
    assert "我的订单" in client.get(reverse("members:home")).content.decode()
