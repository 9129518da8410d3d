"""The dashboard's files: plain HTML, CSS and ES modules in `static/`, served by the API itself at
/dashboard/ (no build step, no CDN: it works offline and behind a firewall).

The pages run in the browser and call the same API as any client, with the key the user pasted (kept in
the tab's sessionStorage, sent as the Bearer header). The files themselves are public: they hold no data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from switchyard.caches import cached

STATIC_DIR = Path(__file__).parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# No inline script or style anywhere; data calls go to this origin only. Results stored in S3 may come
# through a presigned redirect (assets over the inline limit), hence the S3 origins for fetch.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        "connect-src 'self' https://*.amazonaws.com",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass(frozen=True)
class StaticFile:
    body: str
    content_type: str
    etag: str


@cached
def static_files() -> dict[str, StaticFile]:
    """Every servable file by name, read once (at the first dashboard request, not at import)."""
    files = {}
    for path in sorted(STATIC_DIR.iterdir()):
        content_type = CONTENT_TYPES.get(path.suffix)
        if content_type is None or not path.is_file():
            continue
        body = path.read_text(encoding="utf-8")
        digest = hashlib.sha256(body.encode()).hexdigest()[:20]
        files[path.name] = StaticFile(body, content_type, f'"{digest}"')
    return files


def find(name: str) -> StaticFile | None:
    return static_files().get(name)
