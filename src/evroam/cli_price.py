"""`evroam price`: price a session against a tariff, or check a CDR.

    evroam price --tariff T.json --session S.json [--location L.json | --time-zone ZONE] [--json]
    evroam price --tariff T.json --cdr C.json --check [...]

Restrictions are judged in the Location's local time. A 2.2.1 CDR's
cdr_location has no time_zone, so the zone comes from --location (its
`time_zone`) or --time-zone, which wins; without either UTC is assumed, and
the output says so.

Exit status: 0 done (and, with --check, the CDR matches); 1 the CDR does
not match; 2 bad input.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from evroam.ocpi.base import NotJson, error_text, load_json
from evroam.ocpi.cdrs import CDR
from evroam.ocpi.sessions import Session
from evroam.ocpi.tariffs import Tariff
from evroam.ocpi.tokens import ProfileType
from evroam.pricing import (
    CheckReport,
    NoApplicableTariff,
    PricingPolicy,
    PricingResult,
    SessionContext,
    StepBasis,
    TimelineError,
    TimeStepMode,
    check_cdr,
    price,
)
from evroam.pricing.localtime import UnknownTimeZone, zone
from evroam.pricing.policy import ROUNDING_MODES
from evroam.pricing.timeline import Timeline

EXIT_MISMATCH = 1
EXIT_INPUT = 2


class _InputError(Exception):
    pass


def _load(path: Path, what: str) -> Any:
    try:
        data = load_json(path.read_bytes())
    except OSError as exc:
        raise _InputError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None
    except NotJson as exc:
        raise _InputError(f"{what}: {path} is not valid JSON ({exc})") from None
    # Accept a whole OCPI response envelope as well as the bare object.
    if isinstance(data, dict) and "data" in data and "status_code" in data:
        data = data["data"]
    return data


def _parse(model: Any, data: Any, what: str, path: Path) -> Any:
    try:
        return model.from_wire(data)
    except ValidationError as exc:
        raise _InputError(f"{what}: {path} is not a valid OCPI 2.2.1 {model.__name__}: {error_text(exc)}") from None


def _tariffs(paths: list[Path]) -> list[Tariff]:
    out: list[Tariff] = []
    for path in paths:
        data = _load(path, "--tariff")
        for item in data if isinstance(data, list) else [data]:
            out.append(_parse(Tariff, item, "--tariff", path))
    return out


def _zone(location: Path | None, time_zone: str | None) -> tuple[str, str]:
    """(zone, where it came from)."""
    loc_zone = None
    if location is not None:
        data = _load(location, "--location")
        loc_zone = data.get("time_zone") if isinstance(data, dict) else None
        if not isinstance(loc_zone, str):
            raise _InputError(f"--location: {location} has no time_zone")
    name, source = (
        (time_zone, "--time-zone") if time_zone else
        (loc_zone, f"the Location ({location})") if loc_zone else
        ("UTC", "assumed: no --location or --time-zone given")
    )
    try:
        zone(name)
    except UnknownTimeZone as exc:
        raise _InputError(str(exc)) from None
    return name, source


def _money(m: Any) -> str:
    return "—" if m is None else f"{m}"


def _render(result: PricingResult, tz: str, tz_source: str, report: CheckReport | None) -> None:
    from rich import box
    from rich.table import Table

    from evroam.cli_common import make_console

    console = make_console(highlight=False)
    console.print(f"Time zone: {tz} ({tz_source})")
    console.print(f"Tariffs: {', '.join(t.id for t in result.tariffs) or 'none'}    currency: {result.currency}")
    local = zone(tz)
    table = Table(title="Cost per period and dimension", box=box.SIMPLE_HEAD)
    for col, right in (("start (local)", False), ("kind", False), ("tariff", False), ("dimension", False),
                       ("volume", True), ("billed", True), ("price", True), ("VAT %", True), ("excl. VAT", True),
                       ("incl. VAT", True)):
        table.add_column(col, justify="right" if right else "left", no_wrap=True)
    vq = Decimal(1).scaleb(-result.policy.volume_places)
    for p in result.periods:
        start = p.start.astimezone(local).strftime("%Y-%m-%d %H:%M:%S")
        if not p.lines:
            table.add_row(start, p.kind, p.tariff_id or "—", "(free)", f"{p.duration_h.quantize(vq)} h", "", "", "",
                          "0", "0")
            continue
        for i, ln in enumerate(p.lines):
            unit = "kWh" if ln.dimension == "ENERGY" else ("" if ln.dimension == "FLAT" else "h")
            dim = ln.dimension if ln.category != "reservation" else f"{ln.dimension} (reservation)"
            table.add_row(
                start if i == 0 else "",
                p.kind if i == 0 else "",
                (p.tariff_id or "—") if i == 0 else "",
                dim,
                f"{ln.volume.quantize(vq)} {unit}".strip(),
                f"{ln.billed_volume.quantize(vq)} {unit}".strip(),
                str(ln.price),
                "none" if ln.vat is None else str(ln.vat),
                _money(ln.cost.excl),
                _money(ln.cost.incl),
            )
    console.print(table)
    t = result.totals
    totals = Table(title="CDR totals", box=box.SIMPLE_HEAD)
    totals.add_column("field")
    totals.add_column("excl. VAT", justify="right")
    totals.add_column("incl. VAT", justify="right")
    for name, m in (
        ("total_fixed_cost", t.total_fixed_cost),
        ("total_energy_cost", t.total_energy_cost),
        ("total_time_cost", t.total_time_cost),
        ("total_parking_cost", t.total_parking_cost),
        ("total_reservation_cost", t.total_reservation_cost),
        ("total_cost", t.total_cost),
    ):
        totals.add_row(name, _money(m.excl), _money(m.incl))
    console.print(totals)
    console.print(
        f"total_energy {t.total_energy} kWh, total_time {t.total_time} h, total_parking_time "
        f"{t.total_parking_time} h" + (f", reservation {t.total_reservation_time} h" if t.total_reservation_time else "")
    )
    if result.limit_applied:
        u = result.exact_unclamped.rounded(result.policy)
        console.print(f"{result.limit_applied} applied (before: {u.excl} / {_money(u.incl)})")
    for w in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    if report is not None:
        for note in report.notes:
            console.print(f"note: {note}")
        style = "green" if report.ok else "red"
        console.print(f"[{style}]{report.summary()}[/{style}]")


def register(app: typer.Typer) -> None:
    """Add the `price` command to `app`."""

    @app.command("price")
    def price_command(
        tariff: list[Path] = typer.Option(
            None, "--tariff", "-t",
            help="Tariff JSON (one Tariff, a list of them, or a response envelope). Repeatable. "
                 "Several tariffs act as a connector's tariff_ids.",
        ),
        session: Path | None = typer.Option(None, "--session", "-s", help="Session JSON to price."),
        cdr: Path | None = typer.Option(None, "--cdr", "-c", help="CDR JSON to price or --check."),
        check: bool = typer.Option(False, "--check", help="Check the CDR's costs against the tariff."),
        location: Path | None = typer.Option(None, "--location", "-l", help="Location JSON: its time_zone is used."),
        time_zone: str | None = typer.Option(None, "--time-zone", "-z", help="IANA zone; overrides --location."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
        profile: ProfileType | None = typer.Option(None, "--profile", help="The driver's charging preference."),
        ad_hoc: bool = typer.Option(False, "--ad-hoc", help="Ad-hoc (payment terminal) session."),
        places: int = typer.Option(4, "--places", help="Decimal places of reported amounts."),
        rounding: str = typer.Option("ROUND_HALF_UP", "--rounding", help="Decimal rounding mode of reported amounts."),
        time_step: TimeStepMode = typer.Option(TimeStepMode.LAST_DIMENSION, "--time-step"),
        step_basis: StepBasis = typer.Option(StepBasis.BILLABLE, "--step-basis"),
        tolerance: str = typer.Option("0.01", "--tolerance", help="--check: largest acceptable difference."),
    ) -> None:
        """Price a session (or a CDR) with OCPI 2.2.1 tariff semantics, or check a CDR's costs."""
        try:
            if (session is None) == (cdr is None):
                raise _InputError("give exactly one of --session or --cdr")
            if check and cdr is None:
                raise _InputError("--check needs --cdr")
            if rounding not in ROUNDING_MODES:
                raise _InputError(f"--rounding: one of {', '.join(sorted(ROUNDING_MODES))}")
            try:
                tol = Decimal(tolerance)
            except InvalidOperation:
                raise _InputError(f"--tolerance: {tolerance!r} is not a number") from None
            try:
                policy = PricingPolicy(places=places, rounding=rounding, time_step=time_step, step_basis=step_basis,
                                       tolerance=tol)
            except ValueError as exc:
                raise _InputError(str(exc)) from None
            tz, tz_source = _zone(location, time_zone)
            tariffs = _tariffs(list(tariff or []))
            context = SessionContext(ad_hoc=ad_hoc, profile_type=profile)
            report: CheckReport | None = None
            if cdr is not None:
                the_cdr: CDR = _parse(CDR, _load(cdr, "--cdr"), "--cdr", cdr)
                if check or not tariffs:
                    report = check_cdr(the_cdr, tariffs=tariffs, time_zone=tz, context=context, policy=policy)
                    result = report.result
                    if not check:
                        report = None
                else:
                    timeline = Timeline.from_cdr(the_cdr, time_zone=tz)
                    result = price(tariffs[0] if len(tariffs) == 1 else tariffs, timeline, context=context,
                                   policy=policy)
            else:
                assert session is not None
                the_session: Session = _parse(Session, _load(session, "--session"), "--session", session)
                if not tariffs:
                    raise _InputError("--tariff: give the tariff(s) to price the session with")
                timeline = Timeline.from_session(the_session, time_zone=tz)
                result = price(tariffs[0] if len(tariffs) == 1 else tariffs, timeline, context=context, policy=policy)
        except _InputError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_INPUT) from None
        except (NoApplicableTariff, TimelineError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_INPUT) from None

        if as_json:
            out: dict[str, Any] = {"time_zone": tz, "time_zone_source": tz_source, **result.to_dict()}
            if report is not None:
                out["check"] = {k: v for k, v in report.to_dict().items() if k != "breakdown"}
            typer.echo(json.dumps(out, indent=2))
        else:
            _render(result, tz, tz_source, report)
        if report is not None and not report.ok:
            raise typer.Exit(EXIT_MISMATCH)
