"""Lesson routes: the lesson page, "mark complete", and rich lesson routes (mounted at the site root by config/urls.py, namespace `learning`)."""
from __future__ import annotations

from django.urls import path, re_path

from members.learning import views

app_name = "learning"

urlpatterns = [
    path("courses/<slug:slug>/lessons/<int:position>/", views.lesson_detail, name="lesson_detail"),
    path("courses/<slug:slug>/lessons/<int:position>/complete/", views.lesson_complete, name="lesson_complete"),
    path("courses/<slug:slug>/lessons/<int:position>/media/", views.lesson_media, name="lesson_media"),
    path("courses/<slug:slug>/lessons/<int:position>/position/", views.lesson_position, name="lesson_position"),
    path("courses/<slug:slug>/lessons/<int:position>/quiz/", views.quiz_submit, name="quiz_submit"),
    path("courses/<slug:slug>/certificate/", views.certificate_mine, name="certificate_mine"),
    path("downloads/<int:pk>/", views.attachment_download, name="attachment_download"),
    re_path(r"^certificates/(?P<code>[A-Za-z0-9_-]{8,40})/$", views.certificate_verify, name="certificate_verify"),
    re_path(r"^certificates/(?P<code>[A-Za-z0-9_-]{8,40})/pdf/$", views.certificate_pdf, name="certificate_pdf"),
]
