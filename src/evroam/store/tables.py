"""Table definitions (SQLAlchemy Core). Migrations in `migrations/` create them."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC on both backends (SQLite stores no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json = sa.JSON().with_variant(JSONB(), "postgresql")

parties = sa.Table(
    "parties",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    # INVITED: token A issued, waiting for their POST. REGISTERING: we are
    # POSTing to them. REGISTERED. UNREGISTERED: DELETE done, kept for history.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("initiated_by_us", sa.Boolean, nullable=False, default=False),
    sa.Column("versions_url", sa.String(255)),
    sa.Column("version", sa.String(8)),
    sa.Column("endpoints", Json),
    sa.Column("roles", Json),
    # The token we present to them. It must be kept usable, so it cannot be a hash.
    sa.Column("token_out", sa.String(64)),
    sa.Column("allow_raw_token", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # On a Hub: the ConnectionStatus of this platform's parties (None: derived
    # from `status`, see hub/directory.py), and since when.
    sa.Column("hub_status", sa.String(16)),
    sa.Column("hub_status_at", UTCDateTime),
)

# Tokens we issued, by SHA-256. Only the hash is kept: the token itself is
# shown once (token A on invite) or travels once in a Credentials body.
party_tokens = sa.Table(
    "party_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("party_id", sa.Integer, sa.ForeignKey("parties.id", ondelete="CASCADE"), nullable=False, index=True),
    # A: registration only. PENDING: issued during our own POST/PUT, not yet
    # confirmed by the partner's answer. ACTIVE: the token they call us with.
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

call_log = sa.Table(
    "call_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("direction", sa.String(3), nullable=False),  # in | out
    sa.Column("party_id", sa.Integer, index=True),  # no FK: logs outlive partners
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("http_status", sa.Integer),
    sa.Column("ocpi_status", sa.Integer),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("request_id", sa.String(64)),
    sa.Column("correlation_id", sa.String(64)),
    sa.Column("request_body", sa.Text),
    sa.Column("response_body", sa.Text),
    sa.Column("error", sa.Text),
)

# OCPI objects as documents with indexed keys. owner_id 0 = ours; otherwise the
# partner we received it from. Keys are stored upper-cased for CiString lookup
# next to the values as received (inside `data`).
OURS = 0

objects = sa.Table(
    "objects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("module", sa.String(24), nullable=False),
    sa.Column("owner_id", sa.Integer, nullable=False),
    sa.Column("cc_key", sa.String(2), nullable=False),
    sa.Column("pid_key", sa.String(3), nullable=False),
    sa.Column("oid_key", sa.String(39), nullable=False),
    # Tokens are identified by uid AND type; empty for every other module.
    sa.Column("type_key", sa.String(16), nullable=False, default=""),
    sa.Column("last_updated", UTCDateTime, nullable=False),
    # Canonical JSON as we serialised it after validation: list endpoints
    # splice these bytes into the response without parsing them again.
    sa.Column("data", sa.Text, nullable=False),
    # The counterparty an object concerns (CDR/Session: the token's eMSP),
    # "CCPID" upper-cased, so a Sender shows each partner only its own.
    sa.Column("ref_key", sa.String(5)),
    # Set when a full pull no longer returns it: kept, but no longer valid.
    # On one of ours: deleted (a tombstone, so the deletion can be delivered).
    sa.Column("stale", sa.Boolean, nullable=False, default=False),
    # Free-form state of our own about the object (e.g. CDR ACCEPTED/DISPUTED).
    sa.Column("status", sa.String(24)),
    sa.Column("note", sa.Text),
    sa.UniqueConstraint("module", "owner_id", "cc_key", "pid_key", "oid_key", "type_key"),
    sa.Index("ix_objects_listing", "module", "owner_id", "last_updated", "id"),
    sa.Index("ix_objects_oid", "module", "owner_id", "oid_key", "id"),
    sa.Index("ix_objects_page", "module", "owner_id", "stale", "id"),
    # A Hub's Open Routing looks a broadcast object up by id across owners
    # (hub/openrouting.py): the indexes above all put owner_id before oid_key.
    sa.Index("ix_objects_any_owner", "module", "oid_key"),
)

# On a Hub: routes learnt while forwarding (hub/openrouting.py). A forwarded
# request tells who speaks to whom about an object (a Session PUT: its CPO
# to its eMSP), so a later Open Routing Request naming only the object's id
# (a STOP_SESSION, a Session PATCH without cdr_token) can be routed. One row
# per object id and FROM, written once.
hub_routes = sa.Table(
    "hub_routes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("module", sa.String(24), nullable=False),
    sa.Column("ref_key", sa.String(36), nullable=False),  # the object id, upper-cased
    sa.Column("from_cc", sa.String(2), nullable=False),
    sa.Column("from_pid", sa.String(3), nullable=False),
    sa.Column("to_cc", sa.String(2), nullable=False),
    sa.Column("to_pid", sa.String(3), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("module", "ref_key", "from_cc", "from_pid"),
)

# Durable delivery of our changes to partners. One PENDING row per
# (partner, object): later changes coalesce into it, and the worker sends the
# object's state as it is at send time, so a stale version is never replayed.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("party_id", sa.Integer, sa.ForeignKey("parties.id", ondelete="CASCADE"), nullable=False),
    sa.Column("module", sa.String(24), nullable=False),
    sa.Column("object_pk", sa.Integer, sa.ForeignKey("objects.id", ondelete="CASCADE"), nullable=False),
    # PUT, PATCH (small changes: only `patch` is sent), POST (CDRs) or DELETE.
    sa.Column("method", sa.String(6), nullable=False),
    sa.Column("patch", Json),
    sa.Column("sub_path", sa.String(80)),  # e.g. an EVSE uid for an EVSE status PATCH
    sa.Column("seq", sa.Integer, nullable=False, default=1),
    sa.Column("status", sa.String(8), nullable=False),  # PENDING | DEAD
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("claimed_until", UTCDateTime),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("last_error", sa.Text),
    # The last attempt may have reached the partner without us learning the
    # outcome (our process died mid-request, a timeout, a dropped connection).
    # Before sending again the worker reads the partner's copy, so a version
    # the partner already holds is not sent twice (sync/delivery.py).
    sa.Column("unsure", sa.Boolean, nullable=False, server_default=sa.false(), default=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_outbox_due", "status", "next_attempt_at"),
    sa.Index("uq_outbox_pending", "party_id", "object_pk", unique=True,
             sqlite_where=sa.text("status = 'PENDING'"), postgresql_where=sa.text("status = 'PENDING'")),
)

# Per partner and module: when the last successful pull started, for delta sync.
sync_state = sa.Table(
    "sync_state",
    metadata,
    sa.Column("party_id", sa.Integer, sa.ForeignKey("parties.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("module", sa.String(24), primary_key=True),
    # A partner that is a Hub: one row per party behind it whose objects we
    # pull through it (its country_code/party_id, upper case), beside the
    # partner's own row ("", ""), docs/hub/behind-pull.md.
    sa.Column("owner_cc", sa.String(2), primary_key=True, server_default=""),
    sa.Column("owner_pid", sa.String(3), primary_key=True, server_default=""),
    sa.Column("last_success_start", UTCDateTime),
    sa.Column("last_attempt_at", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("objects_seen", sa.Integer),
    # When that party was reported CONNECTED again: a full pull of its objects is due then.
    sa.Column("owner_pull_due_at", UTCDateTime),
)

# Asynchronous requests of the Commands and ChargingProfiles modules, both the
# ones we send (direction "out", eMSP/SCSP: tracked until the result comes)
# and the ones we receive (direction "in", CPO: followed until we report the
# result). `uid` is the unique id inside the response_url we hand out (out)
# or our own tracking id (in).
commands = sa.Table(
    "commands",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("uid", sa.String(36), nullable=False, unique=True),
    sa.Column("direction", sa.String(3), nullable=False),  # out | in
    sa.Column("kind", sa.String(16), nullable=False),  # commands | chargingprofiles
    # CommandType, or GET_ACTIVE / SET / CLEAR for charging profiles.
    sa.Column("type", sa.String(24), nullable=False),
    sa.Column("party_id", sa.Integer, nullable=False, index=True),  # no FK: history outlives partners
    # The object the request is about (location, session or reservation id), upper-cased.
    sa.Column("ref_key", sa.String(36)),
    sa.Column("response_url", sa.String(255), nullable=False),
    sa.Column("request", sa.Text),  # the body (or query) as sent/received
    # PENDING, ACCEPTED (waiting for the result), REJECTED, NOT_SUPPORTED,
    # UNKNOWN_SESSION, TOO_OFTEN, COMPLETED (result in), TIMEOUT or ERROR.
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("response", sa.String(16)),  # the synchronous answer's result
    sa.Column("status_code", sa.Integer),  # the synchronous answer's OCPI status_code
    sa.Column("timeout_s", sa.Integer),
    sa.Column("deadline_at", UTCDateTime),  # set when ACCEPTED: response time + timeout
    sa.Column("result", sa.String(24)),  # the latest asynchronous result
    sa.Column("result_data", sa.Text),
    sa.Column("result_at", UTCDateTime),
    sa.Column("message", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_commands_ref", "kind", "ref_key"),
    sa.Index("ix_commands_due", "state", "deadline_at"),
)
