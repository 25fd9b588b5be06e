"""Security headers on every response: the Content-Security-Policy and the browser's other guards.

The pages run only our own scripts (``/static``): no inline script, no inline event handler, no
style attribute, no plugin, no framing. Whatever a file, a form or a phone sent is inserted as
text by the scripts, and this policy is the second wall should one of them slip.

The headers are added by a pure ASGI wrapper placed outside every other layer, the server's
own 500 answer included. It costs one small header merge per response; the policy is built once
(pages also name the WebSocket endpoints of the host they were asked for, cached per host).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The pages' policy. ``img-src`` takes ``blob:`` for the photo preview and the manager's charts
#: (fetched with the token, shown as blob URLs); map tiles add their server when configured.
#: Styles come from our files only: Leaflet and our scripts set element styles through the
#: CSSOM, which ``style-src`` does not govern.
PAGE_POLICY: dict[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    "script-src": ("'self'",),
    "style-src": ("'self'",),
    "img-src": ("'self'", "blob:"),
    "connect-src": ("'self'",),
    "font-src": ("'self'",),
    "worker-src": ("'self'",),
    "manifest-src": ("'self'",),
    "object-src": ("'none'",),
    "frame-ancestors": ("'none'",),
    "base-uri": ("'self'",),
    "form-action": ("'self'",),
}

#: The other headers, the same on every response.
STATIC_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    # The courier's page asks for the position and takes proof photos; nothing else is needed.
    (
        b"permissions-policy",
        b"geolocation=(self), camera=(self), microphone=(), payment=(), usb=()",
    ),
)

CSP = b"content-security-policy"
_HOST_RE = re.compile(rb"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
_MAX_HOSTS = 64


def tile_source(tile_url: str | None) -> str | None:
    """Return the CSP source of a tile URL template (``{s}`` subdomains become ``*.``), or None.

    Parameters
    ----------
    tile_url
        A Leaflet tile URL such as ``https://{s}.tile.example.org/{z}/{x}/{y}.png``.

    Returns
    -------
    source
        ``https://*.tile.example.org``; the bare scheme (``https:``) when the host is templated
        elsewhere than its first label; None without a URL or for a relative one (``'self'``).
    """
    if not tile_url:
        return None
    parts = urlsplit(tile_url)
    if not parts.scheme or not parts.netloc:
        return None
    host = re.sub(r"\{[^}]*\}", "*", parts.netloc)
    if "*" in host.removeprefix("*."):
        return f"{parts.scheme}:"
    return f"{parts.scheme}://{host}"


def render_policy(policy: Mapping[str, tuple[str, ...]]) -> str:
    """Return a policy as the header's text: ``name source source; name source``."""
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in policy.items())


def _extend(
    policy: Mapping[str, tuple[str, ...]], extra: Mapping[str, tuple[str, ...]]
) -> dict[str, tuple[str, ...]]:
    return {name: sources + extra.get(name, ()) for name, sources in policy.items()}


class SecurityHeaders:
    """Add the security headers to every HTTP response that does not set them itself.

    Parameters
    ----------
    app
        The wrapped application.
    tile_url
        The basemap's tile URL, whose server is allowed as an image source.
    """

    def __init__(self, app: ASGIApp, *, tile_url: str | None = None) -> None:
        self.app = app
        tiles = tile_source(tile_url)
        self.policy = _extend(PAGE_POLICY, {"img-src": (tiles,)} if tiles else {})
        self.csp = render_policy(self.policy).encode()
        self._page_csp: dict[bytes, bytes] = {}

    def page_csp(self, host: bytes) -> bytes:
        """Return the policy of a page asked for on ``host``: its WebSocket endpoints may connect.

        CSP Level 3 browsers already let ``'self'`` reach ``ws(s)://`` on the same host; older
        ones need the endpoints named. A host that is not a plain name or address gets the
        base policy.
        """
        csp = self._page_csp.get(host)
        if csp is None:
            if not _HOST_RE.match(host):
                return self.csp
            name = host.decode("ascii")
            extra = {"connect-src": (f"ws://{name}", f"wss://{name}")}
            csp = render_policy(_extend(self.policy, extra)).encode()
            if len(self._page_csp) >= _MAX_HOSTS:
                self._page_csp.clear()
            self._page_csp[host] = csp
        return csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the call on, adding the headers to the response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                if CSP not in present:
                    headers.append((CSP, self._csp_for(scope, headers)))
                headers.extend(h for h in STATIC_HEADERS if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _csp_for(self, scope: Scope, headers: list[tuple[bytes, bytes]]) -> bytes:
        is_page = any(
            n.lower() == b"content-type" and v.startswith(b"text/html") for n, v in headers
        )
        if not is_page:
            return self.csp
        host = next((v for n, v in scope.get("headers") or () if n == b"host"), b"")
        return self.page_csp(host)


def install_security_headers(app: Starlette, *, tile_url: str | None = None) -> None:
    """Wrap ``app``'s whole middleware stack in :class:`SecurityHeaders`.

    Outside Starlette's ``ServerErrorMiddleware``, so an unexpected error's 500 carries the
    headers too (middleware added with ``add_middleware`` sits inside it and never sees that
    answer).

    Parameters
    ----------
    app
        The application; call before it serves its first request.
    tile_url
        The basemap's tile URL template, if any.
    """
    build = app.build_middleware_stack

    def build_with_headers() -> ASGIApp:
        return SecurityHeaders(build(), tile_url=tile_url)

    app.build_middleware_stack = build_with_headers  # type: ignore[method-assign]
