"""Where a `next` (or any other user-given) redirect may go: a path on this site, nothing else.

Browsers forgive a lot in a Location header: they drop tabs and line breaks (`/\\t/evil.example`
becomes `//evil.example`, another host), read a backslash as a slash, and take `//host` or
`scheme:` as leaving the site. So a target is kept only when it is a plain path of this site:
no scheme, no host, no control or white-space character, no backslash, starting with a single
`/`, and not an API path (those answer JSON, not pages).
"""

from __future__ import annotations

from urllib.parse import urlsplit


def local_path(target: str | None) -> str | None:
    """`target` when it is a safe path on this site, else None."""
    if not target or len(target) > 2000 or not target.startswith("/"):
        return None
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target) or "\\" in target:
        return None
    if target.startswith("//") or target.startswith("/api/"):
        return None
    try:
        parts = urlsplit(target)
    except ValueError:
        return None
    if parts.scheme or parts.netloc:
        return None
    return target
