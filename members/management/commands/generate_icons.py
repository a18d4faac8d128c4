"""Draw the favicon and app icons into static/icons/ (committed; rerun after changing the mark).

The mark is an open book on the accent colour, drawn with Pillow from coordinates, so the output is the same on
every machine. `manage.py generate_icons` writes icon.svg, favicon.ico (16, 32, 48), apple-touch-icon.png (180),
icon-192.png, icon-512.png and site.webmanifest.
"""
from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings

from config.commands import BaseCommand

ACCENT = "#0b6e4f"
PAPER = "#ffffff"
LIGHT = "#bfe7d5"

SVG = f"""<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">
<rect width="64" height="64" rx="14" fill="{ACCENT}"/>
<path d="M12 18c7-3 14-3 20 2v30c-6-5-13-5-20-2z" fill="{PAPER}"/>
<path d="M52 18c-7-3-14-3-20 2v30c6-5 13-5 20-2z" fill="{LIGHT}"/>
</svg>
"""


def draw(size: int) -> object:
    from PIL import Image, ImageDraw

    scale = 4  # draw large, then downsample: smooth edges without depending on an anti-aliasing flag
    big = size * scale
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    unit = big / 64
    pen.rounded_rectangle((0, 0, big - 1, big - 1), radius=int(14 * unit), fill=ACCENT)

    def page(points: list[tuple[float, float]], fill: str) -> None:
        pen.polygon([(x * unit, y * unit) for x, y in points], fill=fill)

    page([(12, 18), (19, 15.5), (26, 16), (32, 20), (32, 50), (26, 46), (19, 45.5), (12, 48)], PAPER)
    page([(52, 18), (45, 15.5), (38, 16), (32, 20), (32, 50), (38, 46), (45, 45.5), (52, 48)], LIGHT)
    return image.resize((size, size), Image.Resampling.LANCZOS)


class Command(BaseCommand):
    help = "Draw the favicon and app icons into static/icons/."

    def handle(self, *args: object, **options: object) -> None:
        out = Path(settings.BASE_DIR) / "static" / "icons"
        out.mkdir(parents=True, exist_ok=True)
        (out / "icon.svg").write_text(SVG)
        draw(48).save(out / "favicon.ico", sizes=[(16, 16), (32, 32), (48, 48)])
        for name, size in (("apple-touch-icon.png", 180), ("icon-192.png", 192), ("icon-512.png", 512)):
            draw(size).save(out / name, optimize=True)
        manifest = {
            "name": "Learning Club", "short_name": "Learning Club", "start_url": "/", "display": "standalone",
            "theme_color": ACCENT, "background_color": "#ffffff",
            "icons": [{"src": "icon-192.png", "sizes": "192x192", "type": "image/png"},
                      {"src": "icon-512.png", "sizes": "512x512", "type": "image/png"},
                      {"src": "icon.svg", "sizes": "any", "type": "image/svg+xml"}],
        }
        (out / "site.webmanifest").write_text(json.dumps(manifest, indent=2) + "\n")
        self.stdout.write(f"Icons written to {out}")
