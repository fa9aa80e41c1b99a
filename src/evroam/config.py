"""Node configuration: `evroam.toml` in the node's home folder, overridable by env.

Secrets never live here: the admin token (later) comes from env or a file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from evroam.ocpi.common import Role
from evroam.store.db import sqlite_url

# Far above any real OCPI object (a Location with a few hundred EVSEs is well
# under 1 MiB), and small enough that a hostile body never fills memory.
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024

# Far above any real site (the largest hubs have a few hundred charge points,
# an EVSE a handful of connectors), yet low enough that one Location document
# stays quick to read, validate and rewrite on every EVSE change: 33,500 EVSEs
# made each EVSE PATCH take 3.9 s.
DEFAULT_MAX_EVSES = 2000
DEFAULT_MAX_CONNECTORS = 32


@dataclass(frozen=True, slots=True)
class LocationLimits:
    """config.max_evses_per_location and config.max_connectors_per_evse."""

    max_evses: int = DEFAULT_MAX_EVSES
    max_connectors: int = DEFAULT_MAX_CONNECTORS


CONFIG_FILE = "evroam.toml"


@dataclass(slots=True)
class RoleConfig:
    role: Role
    country_code: str
    party_id: str
    name: str
    website: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"role": self.role.value, "country_code": self.country_code, "party_id": self.party_id,
             "name": self.name}
        if self.website:
            d["website"] = self.website
        return d


@dataclass(slots=True)
class NodeConfig:
    home: Path
    public_url: str
    roles: list[RoleConfig]
    name: str = "evroam"
    db: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    call_log_retention_days: int = 90
    call_log_body_cap: int = 16384
    page_limit: int = 100
    # Deliveries and scheduled pulls run inside `serve` unless turned off
    # (then `evroam worker` runs them, e.g. several processes on PostgreSQL).
    run_workers: bool = True
    delivery_max_attempts: int = 12
    delivery_backoff_s: float = 1.0
    delivery_backoff_cap_s: float = 3600.0
    # Total time allowed for one outbound OCPI call. A delivery that times out
    # may still have been applied by the partner: it is checked there before
    # it is sent again (sync/delivery.py).
    outbound_timeout_s: float = 30.0
    # Scheduled pulls (sync/scheduler.py): delta every pull_interval_s (±10 %),
    # full every full_pull_interval_s; a new partner's first after the delay.
    pull_interval_s: float = 3 * 3600.0
    full_pull_interval_s: float = 24 * 3600.0
    pull_initial_delay_s: float = 60.0
    # Sync-lag monitoring (sync/lag.py): alert when a partner is this far behind.
    lag_alert_s: float = 60.0
    lag_check_s: float = 5.0
    # GET /metrics (Prometheus text format, unauthenticated): opt in.
    metrics: bool = False
    # A module whose setup(node) registers business hooks (evroam/hooks.py
    # load_setup), loaded by `serve` and `worker`. A .py path is relative to home.
    hooks: str | None = None
    # Logging of `serve` and `worker` (logs.py): the level, and one line per
    # HTTP request (off by default: the call log already records OCPI calls).
    log_level: str = "info"
    access_log: bool = False
    # Bad-input limits (docs/limits.md): a larger request body is answered 413
    # before it is read whole (OCPI and admin API); a Location with more EVSEs,
    # or an EVSE with more connectors, is refused with 2001 (receiver, admin
    # API and `data import`).
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_evses_per_location: int = DEFAULT_MAX_EVSES
    max_connectors_per_evse: int = DEFAULT_MAX_CONNECTORS
    # A Hub (role HUB, docs/hub.md): how long a forwarded request may take
    # before the caller gets 4002, and how long a party may stay silent
    # before the Hub checks it with a GET of its versions.
    hub_forward_timeout_s: float = 10.0
    hub_liveness_s: float = 300.0
    hub_liveness_check_s: float = 10.0  # how often the Hub looks for silent parties
    # A party behind a Hub (docs/hub/behind-pull.md): how long after the Hub
    # reports a party CONNECTED again we pull its objects in full.
    hub_reconnect_pull_s: float = 5.0
    # Never read from or written to the config file: env EVROAM_ADMIN_TOKEN or
    # the file named by EVROAM_ADMIN_TOKEN_FILE (admin/app.py). Set in code for tests.
    admin_token: str | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def db_url(self) -> str:
        return self.db or sqlite_url(self.home / "evroam.db")

    @property
    def location_limits(self) -> LocationLimits:
        return LocationLimits(self.max_evses_per_location, self.max_connectors_per_evse)

    @property
    def versions_url(self) -> str:
        return self.public_url.rstrip("/") + "/ocpi/versions"

    def save(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        doc: dict[str, Any] = {
            "name": self.name,
            "public_url": self.public_url,
            "host": self.host,
            "port": self.port,
            "call_log_retention_days": self.call_log_retention_days,
            "page_limit": self.page_limit,
            "run_workers": self.run_workers,
            "delivery_max_attempts": self.delivery_max_attempts,
            "delivery_backoff_s": self.delivery_backoff_s,
            "delivery_backoff_cap_s": self.delivery_backoff_cap_s,
            "outbound_timeout_s": self.outbound_timeout_s,
            "pull_interval_s": self.pull_interval_s,
            "full_pull_interval_s": self.full_pull_interval_s,
            "pull_initial_delay_s": self.pull_initial_delay_s,
            "lag_alert_s": self.lag_alert_s,
            "lag_check_s": self.lag_check_s,
            "metrics": self.metrics,
            "log_level": self.log_level,
            "access_log": self.access_log,
            "max_body_bytes": self.max_body_bytes,
            "max_evses_per_location": self.max_evses_per_location,
            "max_connectors_per_evse": self.max_connectors_per_evse,
            "hub_forward_timeout_s": self.hub_forward_timeout_s,
            "hub_liveness_s": self.hub_liveness_s,
            "hub_liveness_check_s": self.hub_liveness_check_s,
            "hub_reconnect_pull_s": self.hub_reconnect_pull_s,
            "roles": [r.to_dict() for r in self.roles],
        }
        if self.db:
            doc["db"] = self.db
        if self.hooks:
            doc["hooks"] = self.hooks
        path = self.home / CONFIG_FILE
        path.write_text(tomli_w.dumps(doc))
        return path

    @classmethod
    def load(cls, home: Path) -> NodeConfig:
        path = home / CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: run `evroam init --home {home} …` first")
        doc = tomllib.loads(path.read_text())
        roles = [RoleConfig(role=Role(r["role"]), country_code=r["country_code"], party_id=r["party_id"],
                            name=r.get("name", doc.get("name", "evroam")), website=r.get("website"))
                 for r in doc.get("roles", [])]
        cfg = cls(
            home=home,
            public_url=os.environ.get("EVROAM_PUBLIC_URL", doc["public_url"]),
            roles=roles,
            name=doc.get("name", "evroam"),
            db=os.environ.get("EVROAM_DB", doc.get("db")),
            host=doc.get("host", "127.0.0.1"),
            port=int(doc.get("port", 8080)),
            call_log_retention_days=int(os.environ.get("EVROAM_CALL_LOG_RETENTION_DAYS",
                                                       doc.get("call_log_retention_days", 90))),
            page_limit=int(doc.get("page_limit", 100)),
            run_workers=bool(doc.get("run_workers", True)),
            delivery_max_attempts=int(doc.get("delivery_max_attempts", 12)),
            delivery_backoff_s=float(doc.get("delivery_backoff_s", 1.0)),
            delivery_backoff_cap_s=float(doc.get("delivery_backoff_cap_s", 3600.0)),
            outbound_timeout_s=float(doc.get("outbound_timeout_s", 30.0)),
            pull_interval_s=float(doc.get("pull_interval_s", 3 * 3600.0)),
            full_pull_interval_s=float(doc.get("full_pull_interval_s", 24 * 3600.0)),
            pull_initial_delay_s=float(doc.get("pull_initial_delay_s", 60.0)),
            lag_alert_s=float(doc.get("lag_alert_s", 60.0)),
            lag_check_s=float(doc.get("lag_check_s", 5.0)),
            metrics=bool(doc.get("metrics", False)),
            hooks=doc.get("hooks") or None,
            log_level=str(doc.get("log_level", "info")),
            access_log=bool(doc.get("access_log", False)),
            max_body_bytes=_positive(doc, "max_body_bytes", DEFAULT_MAX_BODY_BYTES),
            max_evses_per_location=_positive(doc, "max_evses_per_location", DEFAULT_MAX_EVSES),
            max_connectors_per_evse=_positive(doc, "max_connectors_per_evse", DEFAULT_MAX_CONNECTORS),
            hub_forward_timeout_s=float(doc.get("hub_forward_timeout_s", 10.0)),
            hub_liveness_s=float(doc.get("hub_liveness_s", 300.0)),
            hub_liveness_check_s=float(doc.get("hub_liveness_check_s", 10.0)),
            hub_reconnect_pull_s=float(doc.get("hub_reconnect_pull_s", 5.0)),
        )
        return cfg


def _positive(doc: dict[str, Any], key: str, default: int) -> int:
    # A limit of 0 or less would refuse everything: a typo, not a wish.
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{CONFIG_FILE}: {key} must be a whole number of at least 1, got {value!r}")
    return value
