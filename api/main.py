"""The FastAPI application: ``create_app(settings)`` wires database, Redis, routers and errors."""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis
import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth.service import TokenCache
from api.auth.views import router as auth_router
from api.cash.views import router as cash_router
from api.config import Settings, get_settings
from api.days.views import router as days_router
from api.db import make_engine, make_session_factory, upgrade_database
from api.errors import install_error_handlers
from api.events.views import router as events_router
from api.events.writes import CourierWrites
from api.jobs.views import router as jobs_router
from api.limits import BodySizeLimit
from api.logging import request_id_var
from api.maps.views import router as maps_router
from api.network import warm_network, warm_network_or_none
from api.notify.views import router as notify_router
from api.overload import ShedCourierWrites
from api.plans.views import router as plans_router
from api.reports.views import router as reports_router
from api.rounds.views import router as rounds_router
from api.security import install_security_headers
from api.web.views import mount_static
from api.web.views import router as pages_router

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("api.access")


class Metrics:
    """Prometheus metrics of one app (its own registry, so several apps can live in one test)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "courier_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "courier_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )


class RequestContextMiddleware:
    """Give every request an id (``X-Request-ID``), log it, and record metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode(errors="ignore")[:64] or os.urandom(8).hex()
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        t0 = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - t0
            route = getattr(scope.get("route"), "path", "unmatched")
            key = (scope["method"], route, status)
            series = self._series.get(key)
            if series is None:  # labels() costs a lock and a lookup: keep each pair of series
                series = (
                    self.metrics.requests.labels(scope["method"], route, str(status)),
                    self.metrics.latency.labels(scope["method"], route),
                )
                if len(self._series) < 10_000:
                    self._series[key] = series
            series[0].inc()
            series[1].observe(elapsed)
            access_logger.info(
                "%s %s %d %.1f ms", scope["method"], scope["path"], status, elapsed * 1000
            )
            request_id_var.reset(token)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API.

    Parameters
    ----------
    settings
        Configuration; ``get_settings()`` when omitted. ``redis_url`` must be set (``courier
        serve`` sets it after starting the embedded Redis).

    Returns
    -------
    app
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.redis_url:
            msg = "REDIS_URL is not set (use `courier serve`, which starts an embedded Redis)"
            raise RuntimeError(msg)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if settings.migrate_on_start:
            await run_in_threadpool(upgrade_database, settings.sqlalchemy_url)
        engine = make_engine(
            settings.sqlalchemy_url, sqlite_synchronous=settings.sqlite_synchronous
        )
        app.state.engine = engine
        app.state.session_factory = make_session_factory(engine)
        app.state.redis = redis.Redis.from_url(settings.redis_url, health_check_interval=30)
        app.state.aredis = aioredis.Redis.from_url(settings.redis_url)
        app.state.token_cache = TokenCache(settings.auth_cache_s)
        if settings.road_eta:
            threading.Thread(
                target=warm_network, args=(settings,), name="warm-network", daemon=True
            ).start()
        # What start-up built lives as long as the process: keep the collector from walking it
        # again and again, which otherwise shows up as pauses in the slowest requests.
        gc.collect()
        gc.freeze()
        logger.info("API ready (database %s)", settings.sqlalchemy_url.split("@")[-1])
        try:
            yield
        finally:
            await app.state.aredis.aclose()
            app.state.redis.close()
            engine.dispose()

    app = FastAPI(
        title="courier-routing",
        version="0.1.0",
        description="Plan and run the daily rounds of postal couriers (Kon Tum post).",
        lifespan=lifespan,
        # FastAPI's own docs pages load Swagger UI and ReDoc from a CDN: /docs is ours
        # (api.web.views), served from the swagger-ui-bundle package.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    metrics = Metrics()
    app.state.metrics = metrics
    install_error_handlers(app)
    # The couriers' frequent writes first: routes are matched in this order.
    for router in (
        events_router,
        rounds_router,
        auth_router,
        jobs_router,
        plans_router,
        reports_router,
        days_router,
        cash_router,
        maps_router,
        notify_router,
        pages_router,
    ):
        app.include_router(router)
    mount_static(app)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Report that the process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz(request: Request) -> JSONResponse:
        """Report whether Redis and the database are reachable (503 if not), and the road network.

        The answer names the part that is down, never its error (anyone may ask); the error
        goes to the log.
        """
        checks: dict[str, Any] = {}
        try:
            request.app.state.redis.ping()
            checks["redis"] = "ok"
        except redis.RedisError as e:
            logger.warning("not ready: redis unreachable: %s: %s", type(e).__name__, e)
            checks["redis"] = "unavailable"
        try:
            with request.app.state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as e:  # any driver error means not ready
            logger.warning("not ready: database unreachable: %s: %s", type(e).__name__, e)
            checks["database"] = "unavailable"
        ok = all(v == "ok" for v in checks.values())
        # Not a condition of readiness: until the roads are loaded, ETAs are straight-line.
        if not settings.road_eta:
            checks["road_network"] = "off"
        else:
            checks["road_network"] = "ready" if warm_network_or_none(settings) else "loading"
        return JSONResponse({"status": "ok" if ok else "unavailable", **checks}, 200 if ok else 503)

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    def metrics_endpoint() -> Response:
        """Expose Prometheus metrics."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # Innermost: the couriers' two frequent writes answered without FastAPI's routing.
    app.add_middleware(CourierWrites)
    app.add_middleware(
        ShedCourierWrites, limit=settings.max_pending_writes, registry=metrics.registry
    )
    app.add_middleware(
        BodySizeLimit,
        upload_bytes=settings.max_upload_bytes,
        photo_bytes=settings.max_photo_bytes,
        json_bytes=settings.max_json_bytes,
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    install_security_headers(app, tile_url=settings.tile_url)
    return app


def app_factory() -> FastAPI:
    """Return the app configured from the environment (for ``uvicorn --factory``)."""
    from api.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    return create_app(settings)
