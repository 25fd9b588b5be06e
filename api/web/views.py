"""HTML pages: login, dispatcher, courier, manager (public shells; data comes from the API).

The pages are left out of the OpenAPI schema: they are for people, and they hold nothing that
needs a token. The language is Vietnamese unless ``?lang=en`` (remembered in a cookie).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import swagger_ui_bundle
import xstatic.pkg.leaflet
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from api.web.i18n import MESSAGES_DIR, Language, messages, pick_language, translate

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

#: The pages, by URL name: template and title key.
PAGES = {
    "dispatcher": ("dispatcher.html", "common.page_dispatcher"),
    "courier": ("courier.html", "common.page_courier"),
    "manager": ("manager.html", "common.page_manager"),
}


def request_language(request: Request) -> Language:
    """Return the caller's language: ``?lang=``, else the cookie, else the configured default."""
    return pick_language(
        request.query_params.get("lang"),
        request.cookies.get("lang"),
        request.app.state.settings.default_language,
    )


def render(request: Request, template: str, title_key: str, **context: Any) -> HTMLResponse:
    """Render a page in the caller's language and remember an explicit language choice."""
    lang = request_language(request)
    asked = request.query_params.get("lang")
    response = templates.TemplateResponse(
        request,
        template,
        {
            "lang": lang,
            "other_lang": "en" if lang == "vi" else "vi",
            "t": lambda key, **values: translate(lang, key, **values),
            "title": translate(lang, title_key),
            "messages": messages(lang),
            **context,
        },
    )
    if asked == lang:
        response.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="lax")
    return response


@router.get("/", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    """Sign in, then go to the page of one's role."""
    return render(request, "login.html", "common.login_title")


def _page(name: str, template: str, title_key: str) -> None:
    def page(request: Request) -> HTMLResponse:
        return render(request, template, title_key, page=name)

    page.__doc__ = f"The {name}'s page."
    router.add_api_route(f"/{name}", page, methods=["GET"], response_class=HTMLResponse)


for _name, (_template, _title) in PAGES.items():
    _page(_name, _template, _title)


@router.get("/favicon.ico")
def favicon() -> Response:
    """No icon yet; answer quietly instead of logging a 404 on every page load."""
    return Response(status_code=204)


def versioned_service_worker(source: Path, files: list[Path]) -> bytes:
    """Return the service worker with its cache named after the contents of ``files``.

    The phone keeps the page, its scripts and styles in that cache; a deploy that changes any of
    them changes the worker's bytes, so phones install it at their next start, fetch the new
    files and drop the old cache. Nobody has to remember to bump a version by hand.
    """
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    text = source.read_text(encoding="utf-8")
    if SW_VERSION_LINE not in text:
        msg = f"{source} lacks the line {SW_VERSION_LINE!r} to version"
        raise ValueError(msg)
    named = f'const VERSION = "courier-{digest.hexdigest()[:16]}";'
    return text.replace(SW_VERSION_LINE, named, 1).encode()


SW_VERSION_LINE = 'const VERSION = "courier-dev";'


@cache
def _courier_service_worker() -> bytes:
    shell = [p for p in STATIC_DIR.rglob("*") if p.is_file()]
    shell += [HERE / "templates" / n for n in ("base.html", "courier.html")]
    shell += sorted(MESSAGES_DIR.rglob("*.json"))
    shell.append(Path(xstatic.pkg.leaflet.BASE_DIR) / "leaflet.js")
    return versioned_service_worker(STATIC_DIR / "courier-sw.js", shell)


@router.get("/courier-sw.js")
def courier_service_worker() -> Response:
    """Serve the courier page's service worker from the root, so its scope can be ``/courier``.

    Never cached by HTTP caches: the browser must see a new version as soon as it is deployed.
    """
    return Response(
        _courier_service_worker(),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/courier"},
    )


@router.get("/courier.webmanifest")
def courier_manifest(request: Request) -> Response:
    """Describe the courier page as an installable web app (home-screen icon, portrait)."""
    lang = request_language(request)
    manifest = {
        "name": translate(lang, "courier.app_name"),
        "short_name": translate(lang, "courier.app_short_name"),
        "start_url": "/courier",
        "scope": "/courier",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#f4f6f9",
        "theme_color": "#f2a900",
        "lang": lang,
        "icons": [
            {"src": "/static/courier-icon.svg", "sizes": "any", "type": "image/svg+xml"},
        ],
    }
    return Response(
        json.dumps(manifest, ensure_ascii=False), media_type="application/manifest+json"
    )


API_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>courier-routing API</title>
  <link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
  <script src="/static/api-docs.js"></script>
</body>
</html>
"""


def mount_static(app: FastAPI) -> None:
    """Serve our scripts and styles, and Leaflet and Swagger UI from their registry packages."""
    app.mount(
        "/static/vendor/leaflet",
        StaticFiles(directory=xstatic.pkg.leaflet.BASE_DIR),
        name="leaflet",
    )
    app.mount(
        "/static/vendor/swagger-ui",
        StaticFiles(directory=str(swagger_ui_bundle.swagger_ui_path)),
        name="swagger-ui",
    )

    @app.get("/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        """Show the API's interactive documentation (no CDN, no inline script)."""
        return HTMLResponse(API_DOCS_PAGE)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
