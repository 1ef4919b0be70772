"""/docs (Swagger UI) and /redoc served from this machine, so they render with no internet.

FastAPI's own pages load Swagger UI and ReDoc from a public CDN. The same files ship in the
fastapi-offline package (the `serve` extra): they are served from /docs-assets instead.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

ASSETS_URL = "/docs-assets"
FAVICON_URL = f"{ASSETS_URL}/favicon.png"
# ReDoc's sidebar shows Redocly's logo from their CDN, whatever its options say: served as our favicon instead.
_REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


def assets_folder() -> str:
    """The folder with swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js and favicon.png."""
    return str(files("fastapi_offline") / "static")


@lru_cache(maxsize=1)
def redoc_script() -> bytes:
    """ReDoc's standalone script, with the one image it would fetch from outside pointed at this server."""
    script = (files("fastapi_offline") / "static" / "redoc.standalone.js").read_bytes()
    return script.replace(_REDOC_LOGO, FAVICON_URL.encode())


def add_offline_docs(api) -> None:
    """Serve /docs and /redoc with local assets. `api` is a FastAPI app made with docs_url=None
    and redoc_url=None."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse, Response
    from fastapi.staticfiles import StaticFiles

    @api.get(f"{ASSETS_URL}/redoc.js", include_in_schema=False)  # before the mount, which would take the path
    def redoc_js() -> Response:
        return Response(redoc_script(), media_type="text/javascript", headers={"cache-control": "max-age=3600"})

    api.mount(ASSETS_URL, StaticFiles(directory=assets_folder()), name="docs-assets")

    @api.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=api.openapi_url, title=f"{api.title}: API",
                                   swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS_URL}/swagger-ui.css", swagger_favicon_url=FAVICON_URL,
                                   swagger_ui_parameters={"validatorUrl": None})  # no badge from the public validator

    @api.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=api.openapi_url, title=f"{api.title}: API", redoc_js_url=f"{ASSETS_URL}/redoc.js",
                              redoc_favicon_url=FAVICON_URL, with_google_fonts=False)
