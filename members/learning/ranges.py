"""Send a stored file with HTTP range support (RFC 9110 §14), so players can seek and downloads can resume.

Django's FileResponse always sends the whole file, and a <video> element that cannot seek by range cannot jump to a
remembered position in a file it has not fully downloaded (Chromium asks for `Range: bytes=N-`). The one PyPI helper
for this (django-ranged-response) has had no release since 2017, so this is a small, tested implementation:

* one range (`bytes=a-b`, `bytes=a-`, `bytes=-n`) → 206 with `Content-Range: bytes a-b/size`;
* a range starting at or past the end (or an empty file) → 416 with `Content-Range: bytes */size`;
* a header that is not a byte range, or asks for several ranges → ignored, 200 with the whole file (RFC 9110
  allows a server to ignore Range; multipart/byteranges is not worth its complexity for media players);
* `If-Range` with a validator that no longer matches → 200 with the whole file;
* `HEAD` → the headers without the body.
"""
from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator
from typing import IO

from django.db.models.fields.files import FieldFile
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header, http_date

CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive (start, end) of a single byte range, None when the header is to be ignored."""
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last n bytes
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - length), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # syntactically invalid (RFC 9110 §14.1.1): ignore the header
    if start >= size:
        raise RangeNotSatisfiable
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


def _stream(handle: IO[bytes], start: int, length: int) -> Iterator[bytes]:
    try:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


def ranged_file_response(
    request: HttpRequest, field_file: FieldFile, *, as_attachment: bool = False, filename: str = ""
) -> HttpResponse:
    storage, name = field_file.storage, field_file.name
    size = storage.size(name)
    modified = storage.get_modified_time(name)
    etag = f'"{size:x}-{int(modified.timestamp() * 1000):x}"'
    last_modified = http_date(modified.timestamp())
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Last-Modified": last_modified,
        # Paid content: a shared cache must not hand it to the next person.
        "Cache-Control": "private, max-age=3600",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": content_disposition_header(
            as_attachment, filename or name.rsplit("/", 1)[-1]
        ),
    }

    byte_range = None
    header = request.headers.get("Range", "")
    if_range = request.headers.get("If-Range", "")
    if header and (not if_range or if_range in (etag, last_modified)):
        try:
            byte_range = parse_range(header, size)
        except RangeNotSatisfiable:
            response = HttpResponse(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
            del response["Content-Disposition"]
            return response

    start, end = byte_range if byte_range else (0, size - 1)
    length = end - start + 1 if size else 0
    if byte_range:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    status = 206 if byte_range else 200
    if request.method == "HEAD" or length == 0:
        response = HttpResponse(status=status, content_type=content_type, headers=headers)
    else:
        response = StreamingHttpResponse(
            _stream(storage.open(name, "rb"), start, length), status=status, content_type=content_type,
            headers=headers,
        )
    response["Content-Length"] = str(length)
    return response
