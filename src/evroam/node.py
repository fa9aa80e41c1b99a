"""One node object assembles a process from config: database, outbound
client, call log, handshake, HTTP app and hooks."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import structlog
import uvicorn
from fastapi import FastAPI
from starlette.middleware import Middleware
from prometheus_client import CollectorRegistry

from evroam.background import Background, every
from evroam.leader import Leadership
from evroam.client.http import new_session
from evroam.client.ocpi import OcpiClient
from evroam.config import NodeConfig
from evroam.logs import parse_level
from evroam.hooks import HookLoadError, Hooks, load_setup
from evroam.hub import service as hub_service
from evroam.hub.layer import Hub, HubLayer
from evroam.ocpi.base import OcpiModel
from evroam.modules import REGISTRY
from evroam.module import Module
from evroam.modules.credentials.handshake import Handshake
from evroam.modules.events import Received
from evroam.modules.hubclientinfo import owner as client_info
from evroam.modules.hubclientinfo import behind as parties_behind
from evroam.modules.hubclientinfo.liveness import Liveness
from evroam.server.app import close as close_app
from evroam.server.app import V, create_app
from evroam.server.context import ServerContext
from evroam.store import calllog
from evroam.store.calllog import CallLog
from evroam.store.db import create_engine, migrate
from evroam.store import parties as party_repo
from evroam.store.parties import Party
from evroam.store.tracking import Tracked
from evroam.sync.tracker import Callbacks, result_poster, tracked
from evroam.modules.commands.client import send_command
from evroam.modules.chargingprofiles.client import send_profile_request
from evroam.ocpi.hubclientinfo import ClientInfo, ConnectionStatus
from evroam.store import outbox
from evroam.sync.delivery import DeliveryWorker
from evroam.sync.via_hub import ViaHub
from evroam.sync.lag import LagMonitor
from evroam.sync.scheduler import PullScheduler
from evroam.sync import own
from evroam.sync.pull import PullResult

log = structlog.get_logger(__name__)

PRUNE_INTERVAL_S = 3600.0


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket for the HTTP server.

    TCP_NODELAY is set on the listener (accepted sockets inherit it): without
    it, a response written in two segments waits ~40 ms on the peer's delayed
    ACK on every keep-alive request.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling. uvicorn swaps in its own
    SIGINT/SIGTERM handlers while it serves and raises the signal again once
    it has shut down, which under the default handler killed the process
    (exit 143) before the node had stopped and said so. Whoever owns the node
    handles signals: the CLI (cli_common.stop_on_signals) stops it cleanly,
    and tests running nodes in-process keep their own handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.engine = create_engine(config.db_url)
        self.call_log = CallLog(self.engine, body_cap=config.call_log_body_cap)
        self.hooks = Hooks()
        self._session = None
        self.client: OcpiClient | None = None
        self.handshake: Handshake | None = None
        self._app: FastAPI | None = None
        self._server: uvicorn.Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._pruner = Background("call-log-prune")
        self._started = False
        self.delivery: DeliveryWorker | None = None
        # Commands/ChargingProfiles results we post in the background (CPO side).
        self.callbacks: Callbacks | None = None
        self.scheduler: PullScheduler | None = None
        self.hub: Hub | None = None  # when we play HUB (hub/)
        self.liveness: Liveness | None = None  # a Hub's, on the leader
        # Per node, so several nodes in one process (tests) never share series.
        self.metrics_registry = CollectorRegistry()
        self.lag = LagMonitor(self.engine, self.metrics_registry, alert_s=config.lag_alert_s,
                              interval_s=config.lag_check_s)
        # Scheduled pulls, lag alerts and pruning: on one process per database.
        self.leadership = Leadership(self.engine, lead=self._lead, follow=self._follow)
        # Behind a Hub, a party's CONNECTED again: its own objects pulled
        # (hubclientinfo/behind.watch) and what was held for it released.
        # Once per node, not per start(): a restarted node reacts once.
        parties_behind.watch(self)
        self.hooks.listen(Received.CLIENT_INFO, self.on_client_info)

    def on(self, event: Any):
        """Register a business hook: `@node.on(CommandType.START_SESSION)`."""
        return self.hooks.on(event)

    def install_hooks(self, spec: str | None = None) -> bool:
        """Load a hooks module and call its setup(node): `spec` from the
        command line (a .py path relative to the current directory), else the
        config's `hooks` (relative to the home folder). Raises HookLoadError;
        False when there is none."""
        base = None if spec else self.config.home
        spec = spec or self.config.hooks
        if not spec:
            return False
        setup = load_setup(spec, base=base)
        try:
            result = setup(self)
        except Exception as exc:
            raise HookLoadError(f"setup() of hooks module {spec!r} failed: {type(exc).__name__}: {exc}") from exc
        if inspect.isawaitable(result):
            # Called before the event loop runs: async work belongs in the hooks.
            with contextlib.suppress(AttributeError):
                result.close()  # type: ignore[union-attr]
            raise HookLoadError(f"setup() of hooks module {spec!r} must be a plain function, not async")
        log.info("hooks.installed", module=spec, hooks=self.hooks.names())
        return True

    @property
    def http(self) -> aiohttp.ClientSession:
        """The node's one outbound HTTP session (after start()), for hooks
        that call the operator's own systems."""
        if self._session is None:
            raise RuntimeError("start() the node first")
        return self._session

    # --- life cycle ----------------------------------------------------------------

    async def start(self) -> Node:
        """Migrate the database and open the outbound client (no HTTP serving)."""
        if self._started:
            return self
        await migrate(self.engine)
        self._session = new_session(total_timeout=self.config.outbound_timeout_s)
        self.client = OcpiClient(self._session, self.call_log)
        self.handshake = Handshake(self.config, self.engine, self.client)
        self.delivery = DeliveryWorker(self.engine, self.client, max_attempts=self.config.delivery_max_attempts,
                                       base_backoff_s=self.config.delivery_backoff_s,
                                       max_backoff_s=self.config.delivery_backoff_cap_s,
                                       request_timeout_s=self.config.outbound_timeout_s,
                                       addressing=ViaHub(self._status_behind))
        self.scheduler = PullScheduler(self.engine, self.client, self.config, self.hooks,
                                       behind=parties_behind.parties_behind)
        self.callbacks = Callbacks(self.engine, post_result=result_poster(self.client),
                                   roles=[(r.role, r.country_code.upper(), r.party_id.upper())
                                          for r in self.config.roles])
        self.hub = hub_service.build(self.config, self.engine, lambda: self._session, self.call_log)
        if self.hub is not None:
            self.hub.node = self
            self.handshake.on_party_change = lambda rid, change: client_info.on_registration(self, rid, change)
            self.liveness = Liveness(self, self.hub, silence_s=self.config.hub_liveness_s,
                                     interval_s=self.config.hub_liveness_check_s)
            self.delivery.addressing = hub_service.addressing(self.hub)
        self.call_log.start()
        self._started = True
        return self

    async def stop(self) -> None:
        # Each stage is bounded on its own (delivery settles, Background.stop);
        # a slow one is named in the log, so a stop that takes long says why.
        async with _stage("workers"):
            await self.stop_workers()
        if self._server is not None:
            self._server.should_exit = True
            if self._serve_task is not None:
                async with _stage("server"):
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._serve_task
            self._server = None
        async with _stage("app"):
            if self._app is not None:
                await close_app(self._app)
            await self._pruner.stop()
            if self.hub is not None:
                await self.hub.close()
            if self.callbacks is not None:
                await self.callbacks.close()
        async with _stage("call_log"):
            await self.call_log.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None
        async with _stage("engine"):
            await self.engine.dispose()
        self._started = False

    async def __aenter__(self) -> Node:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- HTTP -------------------------------------------------------------------------

    @property
    def app(self) -> FastAPI:
        if self._app is None:
            assert self.handshake is not None, "start() the node first"
            ctx = ServerContext(engine=self.engine, public_url=self.config.public_url,
                                credentials=self.handshake, page_limit=self.config.page_limit, hooks=self.hooks,
                                roles=[(r.role, r.country_code.upper(), r.party_id.upper())
                                       for r in self.config.roles],
                                max_body_bytes=self.config.max_body_bytes,
                                location_limits=self.config.location_limits)
            inner = [Middleware(HubLayer, hub=self.hub)] if self.hub is not None else []
            self._app = create_app(ctx, self.call_log, access_log=self.config.access_log, inner=inner)
            if self.hub is not None:
                ctx.endpoints.extend(hub_service.endpoints(self.hub, V))
            self._app.state.callbacks = self.callbacks
            from evroam.admin.app import mount_admin

            mount_admin(self, self._app)
            if self.config.metrics:
                self._app.add_route("/metrics", self.lag.metrics, methods=["GET"], include_in_schema=False)
        return self._app

    async def serve_in_background(self, sock: socket.socket | None = None) -> None:
        """Serve HTTP inside the running loop; returns once the socket accepts."""
        await self.start()
        # log_config=None: uvicorn's lines go through our JSON formatter (logs.py)
        # instead of its own handlers; our access log replaces uvicorn's.
        config = uvicorn.Config(self.app, host=self.config.host, port=self.config.port,
                                log_level=parse_level(self.config.log_level), log_config=None, lifespan="off",
                                access_log=False, timeout_graceful_shutdown=5)
        self._server = _Server(config)
        if sock is None:
            sock = bind_socket(self.config.host, self.config.port)
        self._serve_task = asyncio.create_task(self._server.serve(sockets=[sock]), name="uvicorn")
        if self.config.run_workers:
            self.start_workers()
        while not self._server.started:
            if self._serve_task.done():
                self._serve_task.result()
                raise RuntimeError("HTTP server stopped during start-up")
            await asyncio.sleep(0.01)

    async def serve_forever(self, sock: socket.socket | None = None, stop: asyncio.Event | None = None) -> None:
        """What `evroam serve` runs: serve until `stop` is set (or the server
        ends), then drain open requests, stop, and say so."""
        stopping = asyncio.ensure_future((stop or asyncio.Event()).wait())
        try:
            await self.serve_in_background(sock)
            assert self._serve_task is not None and self._server is not None
            host, port = self._server.servers[0].sockets[0].getsockname()[:2]  # the real port when 0 was asked
            log.info("serve.started", node=self.config.name, versions_url=self.config.versions_url, host=host,
                     port=port, workers=self.config.run_workers)
            await asyncio.wait({self._serve_task, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if self._serve_task.done():
                self._serve_task.result()  # a server that ended by itself: say why
        finally:
            stopping.cancel()
            await self.stop()  # also after a failed start: nothing left open behind the error
        log.info("serve.stopped", node=self.config.name)

    # --- our own objects and sync ----------------------------------------------------------

    def start_workers(self) -> None:
        """Delivery in this process; scheduled pulls, the sync-lag monitor and
        call-log pruning once this process is elected leader (leader.py)."""
        assert self.delivery is not None and self.scheduler is not None, "start() the node first"
        self.delivery.start()
        self.leadership.start()

    async def stop_workers(self) -> None:
        if self.delivery is not None:
            await self.delivery.stop()
        await self.leadership.stop()
        await self._follow()

    async def _lead(self) -> None:
        assert self.scheduler is not None
        self.scheduler.start()
        self.lag.start()
        if self.liveness is not None:
            self.liveness.start()
        self._pruner.start(lambda: every(PRUNE_INTERVAL_S, self._prune, event="call_log.prune_failed"))

    async def _follow(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
        await self.lag.stop()
        if self.liveness is not None:
            await self.liveness.stop()
        await self._pruner.stop()

    async def publish(self, module: Module | str, obj: OcpiModel, *, patch: dict | None = None,
                      sub_path: str | None = None) -> bool:
        """Store one of our objects and queue it for every partner receiving
        that module, in one transaction, under the rules every change of ours
        follows (sync/own.py; raises own.Refused). The same document again
        pushes nothing. Returns True if it was created."""
        module = REGISTRY.objects()[module] if isinstance(module, str) else module
        kind = await own.put(self.engine, module, obj, own.Ours.of(self.config), patch=patch, sub_path=sub_path)
        if kind != own.UNCHANGED and self.delivery is not None:
            self.delivery.notify()
        return kind == own.CREATED

    async def _status_behind(self, hub_id: int, country_code: str, party_id: str) -> ConnectionStatus | None:
        async with self.engine.connect() as conn:
            return await parties_behind.status_behind(conn, hub_id, country_code, party_id)

    async def on_client_info(self, info: ClientInfo, hub: Party) -> None:
        """A Hub reported a party behind it: once CONNECTED again, what was
        held for it (sync/via_hub.py) goes out now rather than at its next look."""
        if info.status != ConnectionStatus.CONNECTED:
            return
        async with self.engine.begin() as conn:
            released = await outbox.release_held(conn, hub.id)
        if released:
            log.info("delivery.held_released", partner=hub.name, party=f"{info.country_code}/{info.party_id}",
                     deliveries=released)
            if self.delivery is not None:
                self.delivery.notify()

    async def party(self, name: str) -> Party:
        async with self.engine.connect() as conn:
            p = await party_repo.by_name(conn, name)
        if p is None:
            raise KeyError(f"no partner named {name!r}")
        return p

    async def pull(self, partner: str, module: str, *, full: bool = False) -> PullResult:
        assert self.client is not None, "start() the node first"
        assert self.scheduler is not None
        return await self.scheduler.pull_one(await self.party(partner), module, full=full)

    async def authorize(self, uid: str, type: str = "RFID", location_id: str | None = None,
                        evse_uids: list[str] | None = None, **kw: Any):
        """CPO side: may token (uid, type) charge here? See modules/tokens/client.py."""
        from evroam.modules.tokens.client import authorize

        return await authorize(self, uid, type, location_id, evse_uids, **kw)

    async def send_command(self, partner: str, command_type: Any, body: Any, *,
                           to: tuple[str, str] | None = None) -> str:
        """eMSP: send a command (its object without response_url); returns
        the tracking id. Through a Hub partner, `to` is the CPO behind it
        (default: the one whose Location or Session the command names). See
        modules/commands/client.py."""
        return await send_command(self, partner, command_type, body, to=to)

    async def send_profile_request(self, partner: str, request: Any, session_id: str, *,
                                   duration: int | None = None, charging_profile: Any = None,
                                   to: tuple[str, str] | None = None) -> str:
        """eMSP/SCSP: ChargingProfiles GET_ACTIVE, SET or CLEAR; returns the
        tracking id. `to`: as for send_command."""
        return await send_profile_request(self, partner, request, session_id, duration=duration,
                                          charging_profile=charging_profile, to=to)

    async def command(self, tracking_id: str) -> Tracked | None:
        """A Commands or ChargingProfiles request we sent or received, timeout applied."""
        return await tracked(self.engine, tracking_id)

    async def _prune(self) -> None:
        removed = await calllog.prune(self.engine, self.config.call_log_retention_days)
        if removed:
            log.info("call_log.pruned", rows=removed, retention_days=self.config.call_log_retention_days)


@contextlib.asynccontextmanager
async def _stage(name: str, slow_s: float = 1.0):
    started = time.monotonic()
    try:
        yield
    finally:
        took = time.monotonic() - started
        if took >= slow_s:
            log.warning("node.stop_slow", stage=name, seconds=round(took, 2))
