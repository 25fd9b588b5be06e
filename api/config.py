"""Service settings: the only module that reads the environment (pydantic-settings)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The most processes one plan solves on by default. Each holds a copy of the day's pieces and
#: road matrices: under 0.7 GB each on the 10,000-job province with two
#: (``tests/benchmarks/results``), so four should stay under issue 12's 4 GB (not measured).
MAX_DEFAULT_SOLVE_PROCESSES = 4


def default_solve_processes() -> int:
    """Return the processes a plan solves on by default.

    The cores this process may use, up to :data:`MAX_DEFAULT_SOLVE_PROCESSES`. A plan's time
    limit is the dispatcher's wait, so each process added is more search for the same wait (the
    search times of ``tests/benchmarks/bench_days.py`` assume two).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_DEFAULT_SOLVE_PROCESSES, cores))


class Settings(BaseSettings):
    """Configuration of the API, the worker and the embedded services.

    Every field is read from an environment variable of the same name in capitals (``REDIS_URL``,
    ``DATABASE_URL``) or with the ``COURIER_`` prefix (``COURIER_DATA_DIR``,
    ``COURIER_ENVIRONMENT``, ``COURIER_NETWORK``, ``COURIER_ZONES``, ``COURIER_CLOSURES``, ...). Unset ``REDIS_URL`` / ``DATABASE_URL`` mean "embedded": the
    ``courier serve`` command starts its own ``redis-server`` and uses a SQLite file in the
    data directory.
    """

    model_config = SettingsConfigDict(env_prefix="COURIER_", env_ignore_empty=True, extra="ignore")

    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    data_dir: Path = Path("courier-data")
    environment: str = "development"
    network: Path | None = None
    zones: Path | None = None
    closures: Path | None = None
    # the one default province (geodata.synthetic.DEFAULT_PROVINCE_NODES / _SEED), as the demo
    network_nodes: int = 20_000
    network_seed: int = 0
    token_ttl_hours: float = 24.0 * 30
    # None: the planner's default, growing with the day's jobs (default_time_limit_s)
    solve_time_limit_s: float | None = None
    # processes that solve one plan or re-plan side by side; None: default_solve_processes()
    solve_workers: int | None = Field(default=None, ge=1)
    # territory: prefer each commune's usual courier, learned from the last published days
    territory_days: int = Field(default=10, ge=0)
    territory_cost_s: int | None = Field(default=None, ge=0)
    queue_name: str = "courier-solve"
    log_level: str = "INFO"
    log_json: bool = False
    max_upload_bytes: int = 20 * 1024 * 1024
    max_photo_bytes: int = 8 * 1024 * 1024
    max_json_bytes: int = 1024 * 1024
    max_upload_rows: int = 50_000
    max_xlsx_unpacked_bytes: int = 100 * 1024 * 1024
    auth_cache_s: float = 30.0
    ws_recheck_s: float = Field(default=5.0, gt=0)
    ws_max_per_user: int = Field(default=5, ge=0)
    # a plan's live feed sends what arrives within this many seconds as one frame (0: each alone)
    live_batch_s: float = Field(default=0.025, ge=0, le=1)
    signin_max_failures_per_user: int = 5
    signin_max_failures_per_address: int = 20
    signin_window_s: int = 15 * 60
    # reverse proxies whose X-Forwarded-For is believed (sign-in limits count the client's address)
    forwarded_allow_ips: str = "127.0.0.1"
    migrate_on_start: bool = True
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    road_eta: bool = True
    max_pending_writes: int = 64
    # threads of one API process running the couriers' writes (see api.threads)
    write_threads: int = Field(default=1, ge=1, le=64)
    # how far ahead of the server's clock a phone's device_ts may be (its clock drifts a little)
    device_ts_ahead_s: float = Field(default=600.0, ge=0)
    tile_url: str | None = None
    tile_attribution: str = "© OpenStreetMap contributors"
    default_language: Literal["vi", "en"] = "vi"
    # citizens' notifications and webhooks (api/notify): the outbox worker and its channels
    notify_poll_s: float = Field(default=0.5, gt=0)
    notify_batch: int = Field(default=200, ge=1)
    notify_concurrency: int = Field(default=16, ge=1)
    notify_backoff_s: float = Field(default=5.0, gt=0)
    notify_backoff_max_s: float = Field(default=900.0, gt=0)
    notify_timeout_s: float = Field(default=10.0, gt=0)
    webhook_max_age_s: float = Field(default=24 * 3600.0, gt=0)
    notify_receipt_key: str | None = None
    zalo_access_token: str | None = None
    zalo_url: str = "https://business.openapi.zalo.me/message/template"
    zalo_templates: dict[str, str] = {}
    sms_url: str | None = None
    sms_method: Literal["POST", "GET", "PUT"] = "POST"
    sms_body_template: str = '{"to": "{phone}", "text": "{text}", "ref": "{delivery_id}"}'
    sms_content_type: str = "application/json"
    sms_username: str | None = None
    sms_password: str | None = None
    sms_auth_header: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "buudien@localhost"
    smtp_starttls: bool = False

    @property
    def solve_processes(self) -> int:
        """Processes one plan or re-plan solves its pieces on (``COURIER_SOLVE_WORKERS``)."""
        return self.solve_workers or default_solve_processes()

    @property
    def sqlalchemy_url(self) -> str:
        """Return the database URL, defaulting to ``<data_dir>/courier.sqlite3``."""
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            elif url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgres://")
            return url
        return f"sqlite:///{(self.data_dir / 'courier.sqlite3').resolve()}"

    @property
    def network_path(self) -> Path:
        """Return the compact-graph cache of the region (default: synthetic province in data_dir)."""
        if self.network is not None:
            return self.network
        return self.data_dir / f"province-{self.network_nodes}-{self.network_seed}.npz"

    @property
    def zones_path(self) -> Path | None:
        """Return the zones file the planner uses: ``COURIER_ZONES``, else the default province's.

        Without ``COURIER_NETWORK`` the service plans on the synthetic province and its zones
        (written beside its graph cache), as ``courier demo`` does; with a real region and no
        ``COURIER_ZONES``, jobs go to the nearest post office.
        """
        if self.zones is not None:
            return self.zones
        if self.network is None:
            return self.network_path.with_name(self.network_path.stem + ".zones.geojson")
        return None

    @property
    def uploads_dir(self) -> Path:
        """Return the directory where proof photos are stored."""
        return self.data_dir / "uploads"


@lru_cache
def get_settings() -> Settings:
    """Return the process's settings, read once from the environment."""
    return Settings()
