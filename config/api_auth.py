"""Token authentication without a query per request (issue 19).

DRF's TokenAuthentication reads the token and its user (one query) on every API request. Here a token's user is
kept per process (the `pages` cache, LocMem: each read returns its own unpickled copy) together with the pages
version and the member's own version (members.pagecache) read *before* the row was: the entry is used only while
both are unchanged, checked with one shared-state read — the read the page-cached API lists make anyway, so they
reuse it instead of reading again (`request.api_token_versions`, members.pagecache.page_key).

What makes an entry stale at once, in every process:
- the token saved or deleted (revoked, rotated, its user deleted): `authtoken.token` is one of
  members.pagecache.MEMBER_MODELS, so it bumps its member's version;
- the user saved (deactivated, password or staff flag changed, any profile edit; not a last-login stamp): every
  save of a members model bumps the pages version, and so does any successful unsafe request (QuerySet updates).
A key seen for the first time in a process is checked with DRF's query and its user id noted; from the second request
on, the versions are read first and the row next, so an entry is never newer than the versions it is kept under.
So each request makes at most the one query DRF made, and none while the entry holds. The entries also expire with
the pages cache's TIMEOUT; with that 0 (the page cache off) every request queries as before.
Throttles, permissions and the rest of DRF run on every request as before.
"""
from __future__ import annotations

import hashlib
from typing import Any

from rest_framework.authentication import TokenAuthentication

from members import pagecache


def _entry_key(key: str) -> str:
    return "apitoken:" + hashlib.sha256(key.encode()).hexdigest()


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        self._request = request  # DRF makes one authenticator per request
        return super().authenticate(request)

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        store = pagecache.store()
        if not store.default_timeout:
            return super().authenticate_credentials(key)
        entry_key = _entry_key(key)
        entry = store.get(entry_key)
        if entry is None:
            # First sight of this key in this process: DRF's query, as before. Its user is learnt (a token's user
            # never changes: the key is the row's primary key) but not trusted yet, since the versions can only be
            # read now, after the row: the next request reads them first and then the row.
            user, token = super().authenticate_credentials(key)
            store.set(entry_key, {"user_id": token.user_id, "user": None, "token": None, "versions": None})
            return user, token
        versions = pagecache.version_values(entry["user_id"])
        if entry["user"] is not None and versions == entry["versions"]:
            self._request.api_token_versions = versions
            return entry["user"], entry["token"]
        # Versions read before the row: a write landing between the two leaves the stored entry already stale.
        user, token = super().authenticate_credentials(key)
        if token.user_id == entry["user_id"]:
            store.set(entry_key, {"user_id": token.user_id, "user": user, "token": token, "versions": versions})
            self._request.api_token_versions = versions
        return user, token
