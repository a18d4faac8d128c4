"""Backfill: re-render every post and comment body with the current renderer (markdown-it-py, community.markdown)
and record its version, so pages show the same HTML whether a row was written before or after the switch.

Batched by primary key, one short transaction per batch (Django runs RunPython in the migration's transaction on
PostgreSQL; atomic=False below keeps each batch's write lock short on SQLite). Idempotent: rows already at the
version are skipped. Reverse: mark the rows as rendered by an unknown version again (0); the HTML stays valid and
sanitised, so nothing needs to be re-rendered on the way back.
"""

from django.db import migrations, transaction

BATCH = 500


def rerender(apps, schema_editor):
    from community.markdown import RENDERER_VERSION, render_markdown

    for name in ("Post", "Comment"):
        model = apps.get_model("community", name)
        last = 0
        while True:
            rows = list(model.objects.filter(pk__gt=last, body_rendered_with__lt=RENDERER_VERSION)
                        .order_by("pk").only("pk", "body")[:BATCH])
            if not rows:
                break
            for row in rows:
                # An erased author's row keeps its empty body and empty HTML.
                row.body_html = render_markdown(row.body) if row.body else ""
                row.body_rendered_with = RENDERER_VERSION
            with transaction.atomic():
                model.objects.bulk_update(rows, ["body_html", "body_rendered_with"])
            last = rows[-1].pk


def forget_version(apps, schema_editor):
    for name in ("Post", "Comment"):
        apps.get_model("community", name).objects.update(body_rendered_with=0)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("community", "0004_body_rendered_with_and_length_limits"),
    ]

    operations = [
        migrations.RunPython(rerender, forget_version),
    ]
