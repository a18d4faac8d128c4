"""The certificate as a one-page PDF (ReportLab), alongside the printable HTML page.

Chinese text uses ReportLab's built-in CID font STSong-Light, which PDF readers supply from their Asian font
packs, so no font file ships with the project; Latin-only text uses Helvetica.
"""
from __future__ import annotations

import io

from django.utils import formats, timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from reportlab.lib.pagesizes import A4, landscape
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from members.models import Certificate

CJK_FONT = "STSong-Light"


def _font(text: str, bold: bool = False) -> str:
    if any(ord(ch) > 0x2E7F for ch in text):
        if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
        return CJK_FONT
    return "Helvetica-Bold" if bold else "Helvetica"


def _centred(pdf: canvas.Canvas, text: str, y: float, size: int, *, bold: bool = False) -> None:
    pdf.setFont(_font(text, bold), size)
    pdf.drawCentredString(landscape(A4)[0] / 2, y, text)


def certificate_pdf_bytes(*, certificate: Certificate, verify_url: str) -> bytes:
    width, height = landscape(A4)
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(width, height), invariant=True)
    pdf.setTitle(_("Certificate of completion"))
    pdf.setLineWidth(3)
    pdf.rect(30, 30, width - 60, height - 60)
    pdf.setLineWidth(1)
    pdf.rect(40, 40, width - 80, height - 80)
    member = certificate.member
    name = member.display_name or member.email.split("@")[0]
    _centred(pdf, _("Learning Club"), height - 110, 18)
    _centred(pdf, _("Certificate of completion"), height - 170, 32, bold=True)
    _centred(pdf, _("This certifies that"), height - 230, 14)
    _centred(pdf, name, height - 275, 28, bold=True)
    _centred(pdf, _("has completed every lesson and quiz of the course"), height - 320, 14)
    _centred(pdf, certificate.course.display_title(get_language()), height - 365, 22, bold=True)
    issued = formats.date_format(timezone.localtime(certificate.issued_at), "DATE_FORMAT")
    _centred(pdf, _("Issued on %(date)s") % {"date": issued}, height - 410, 12)
    _centred(pdf, _("Verify at %(url)s") % {"url": verify_url}, 70, 10)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
