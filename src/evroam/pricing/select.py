"""Which tariff prices which part of a session.

The connector lists its tariff_ids; the session's context (ad-hoc payment,
charging preference) picks the type; the start of the session picks among
tariffs by validity. Optionally (policy) a tariff that ends mid-session hands
over to its successor; a preference change always switches tariff.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from evroam.ocpi.tariffs import Tariff, TariffType
from evroam.ocpi.tokens import ProfileType
from evroam.pricing.compiled import CompiledTariff, compile_tariff, to_us
from evroam.pricing.policy import PricingPolicy

NEG_INF = -(1 << 62)
POS_INF = 1 << 62

_PROFILE_TARIFF = {
    ProfileType.CHEAP: TariffType.PROFILE_CHEAP,
    ProfileType.FAST: TariffType.PROFILE_FAST,
    ProfileType.GREEN: TariffType.PROFILE_GREEN,
    ProfileType.REGULAR: TariffType.REGULAR,
}


class NoApplicableTariff(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class SessionContext:
    """What decides the tariff type of a session."""

    # Terminal (credit/debit card) payment at the charge point.
    ad_hoc: bool = False
    # The driver's ChargingPreferences.profile_type at session start.
    profile_type: ProfileType | None = None
    # Later preference changes, (when, new profile), in time order.
    profile_changes: tuple[tuple[datetime, ProfileType], ...] = ()
    # Force a type (overrides ad_hoc and profile_type).
    tariff_type: TariffType | None = None

    def wanted(self, profile: ProfileType | None) -> TariffType:
        if self.tariff_type is not None:
            return self.tariff_type
        if self.ad_hoc:
            return TariffType.AD_HOC_PAYMENT
        if profile is None:
            return TariffType.REGULAR
        return _PROFILE_TARIFF[profile]


DEFAULT_CONTEXT = SessionContext()

Segment = tuple[int, int, CompiledTariff | None]


def pick(
    tariffs: Sequence[CompiledTariff], at_us: int, wanted: TariffType, policy: PricingPolicy
) -> CompiledTariff | None:
    """The tariff of type `wanted` valid at `at_us`: exact type, else untyped, else REGULAR (policy)."""
    valid = [t for t in tariffs if t.valid_at(at_us)]
    for t in valid:
        if t.type is wanted:
            return t
    for t in valid:
        if t.type is None:
            return t
    if policy.fallback_to_regular and wanted is not TariffType.REGULAR:
        for t in valid:
            if t.type is TariffType.REGULAR:
                return t
    return None


def schedule(
    tariffs: Sequence[Tariff | CompiledTariff],
    start_us: int,
    end_us: int,
    context: SessionContext | None,
    policy: PricingPolicy,
    *,
    explicit: bool = False,
) -> list[Segment]:
    """Contiguous segments covering all time, each priced by one tariff (or none).

    `explicit`: the caller named the one tariff to use; it prices the whole
    session whatever its type and validity (unless switching ends it).
    """
    ctx = context or DEFAULT_CONTEXT
    compiled = [compile_tariff(t) for t in tariffs]
    if explicit:
        only = compiled[0]
        if policy.switch_tariffs_mid_session and only.valid_to_us is not None and start_us < only.valid_to_us < end_us:
            return [(NEG_INF, only.valid_to_us, only), (only.valid_to_us, POS_INF, None)]
        return [(NEG_INF, POS_INF, only)]

    changes = sorted(((to_us(t), p) for t, p in ctx.profile_changes), key=lambda c: c[0])
    profile = ctx.profile_type
    for t, p in changes:
        if t <= start_us:
            profile = p
    first = pick(compiled, start_us, ctx.wanted(profile), policy)
    if first is None:
        raise NoApplicableTariff(
            f"no tariff of type {ctx.wanted(profile).value} (or untyped) is valid at the session start"
        )

    # Instants where the applicable tariff may change.
    cuts = {t for t, _ in changes if start_us < t < end_us}
    if policy.switch_tariffs_mid_session:
        for t in compiled:
            for b in (t.valid_from_us, t.valid_to_us):
                if b is not None and start_us < b < end_us:
                    cuts.add(b)
    if not cuts:
        return [(NEG_INF, POS_INF, first)]

    segments: list[Segment] = []
    bounds = [start_us, *sorted(cuts)]
    current: CompiledTariff | None = first
    for i, b in enumerate(bounds):
        if i == 0:
            chosen = first
        else:
            prof = ctx.profile_type
            for t, p in changes:
                if t <= b:
                    prof = p
            if policy.switch_tariffs_mid_session:
                chosen = pick(compiled, b, ctx.wanted(prof), policy)
            else:
                # Only a preference change switches; validity is judged at the start.
                chosen = pick(compiled, start_us, ctx.wanted(prof), policy)
        lo = NEG_INF if i == 0 else b
        if segments and chosen is current:
            segments[-1] = (segments[-1][0], POS_INF, chosen)
            continue
        if segments:
            segments[-1] = (segments[-1][0], lo, segments[-1][2])
        segments.append((lo, POS_INF, chosen))
        current = chosen
    return segments
