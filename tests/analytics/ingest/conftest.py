from __future__ import annotations

import pytest

from analytics.ingest import read_ahead


@pytest.fixture(params=["in process", "read ahead"])
def reading(request, monkeypatch, settings):
    """Run a test both ways an importing pass reads a file: in the importing process, and ahead in a forked one
    (analytics.ingest.read_ahead, for every file size here). The results must not differ."""
    if request.param == "read ahead":
        if not read_ahead.available():
            pytest.skip("no os.fork on this platform: files are always read in process")
        monkeypatch.setattr(read_ahead, "MIN_BYTES", 0)
        settings.IMPORT_READ_AHEAD = True
    else:
        settings.IMPORT_READ_AHEAD = False
    return request.param
