"""The reimbursement rules (specs/reimbursement-rules.md) as a pure, streaming engine: received
visit versions and the orders in, each visit's outcome and each provider's basis out. No I/O.

Input order. `visits_sorted` yields `(visit, received_at)`, one item per received version, sorted
by (provider organisation number digits, customer personnummer digits, actual_start) — what
`ORDER BY provider_org, customer_pnr, actual_start` gives. The engine needs each (provider,
customer) group to be contiguous and the groups ascending; it checks that as it goes and raises
ValueError when a group comes back out of order. Within a group it sorts the visits itself (an
edit can move a visit's start, so the versions of one visit may be apart), and it holds one group
at a time: memory does not grow with the number of visits.

`visit` is a `schemas.visits.Visit` or any object with the same attributes (a database row
works; `provider_org` and `customer_pnr` may be the digit strings). `received_at` is the aware
time the hub stored that version. A visit is identified by its `visit_id` within its group; a
version that moves a visit to another customer or provider must be streamed in the group of
the visit's counted version by the caller (`run._visit_versions` does), or both groups count it.

Orders are `schemas.orders.Order` objects (several versions of an order may be given: the
highest counts; a cancellation ends its order the day before its effective date) or
`OrderRecord`s. They are read at the start and indexed by (provider, person); a group's orders
are released once the group is decided. Memory then grows only with the output: one line tuple
per (person, category, band, rate), and the kept outcomes.

Provider and customer are compared as digit strings of fixed length (10 and 12), so PostgreSQL
sorts them the same way under any collation.

Two ways to run:
- `run(...)` consumes the stream and returns a `RunResult`: the bases, the counts, and the
  outcomes as pydantic `VisitOutcome`s — by default (`keep="review"`) only those a reviewer must
  read (unpaid, or paid with a warning), `keep="all"` for every visit, `keep="none"` for none.
- `RunStream(...)` is the same run as an iterator of light `Outcome`s, one per visit of the
  period, group by group, for a caller that writes every outcome as it goes; after it is
  exhausted, `bases()` and `result()` give the rest.

Decisions where the spec leaves room:
- The counted version is the highest received strictly before the lock instant. A visit with no
  version before the lock is checked on its highest version and, if checks 1-5 pass, gets
  `after_lock`. Which period a visit belongs to is decided on the counted version's actual start
  (the planned start when it has none; with neither, it belongs to whichever run it is given to).
- `too_long` compares the duration in whole minutes (seconds dropped) with the maximum.
- `no_order` when the provider has no order for the person at all; `outside_order_period` when
  it has one (this month or another) but none is active on the visit's start date. The spec
  names both `no_order`; the issue asks to tell them apart, so the review shows which it was.
- An order is active on a day when one of its services is valid that day; the visit's services
  must all be among the services valid that day. Of several active orders of the provider for the
  person, the first that has all the visit's services is used (its double staffing counts).
- The cap: sum over the person's orders with the provider of each service's hours of the category
  x days the service is valid in the month, x 60 x tolerance / days in month, rounded down.
- Warnings go on paid visits only (an unpaid visit has its reason). A visit cut to 0 by the cap is
  still paid (0 minutes) with `over_ordered`. Lines hold only visits with paid minutes; a provider
  with visits in the period but none paid gets an empty basis with total 0.00.
- Every day of the period needs a rate for each category and band, else ValueError at the start.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter
from typing import Any, Literal

from flows.reimbursement.calendar import PeriodClock, lock_date
from schemas.identity import OrganisationNumber, Personnummer
from schemas.money import Period, round_ore
from schemas.orders import Category, Order
from schemas.reimbursement import BANDS, CATEGORIES, BasisLine, ProviderBasis, Rules, VisitOutcome

_INF = float("inf")
_ZERO = dt.timedelta(0)
_SIXTY = Decimal(60)
_START_THEN_ID = itemgetter(0, 1)


# --- orders ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    """One granted service of an order, as the run needs it."""

    code: str
    category: Category
    hours_per_month: Decimal
    valid_from: dt.date
    valid_to: dt.date | None = None


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """The current state of an order, light: provider and person as digit strings."""

    provider_org: str
    person: str
    services: tuple[ServiceRecord, ...]
    double_staffing: bool = False
    tenant: str | None = None

    @classmethod
    def from_order(cls, order: Order, *, ends_before: dt.date | None = None, tenant: str | None = None) -> OrderRecord:
        """An order's state; with `ends_before` (or for a cancellation, its effective date)
        every service ends the day before."""
        if order.kind == "cancel":
            if not order.services:
                raise ValueError(
                    f"order {order.order_id} v{order.version} is a cancellation without services: "
                    "give its last state with from_order(state, ends_before=effective_date)"
                )
            ends_before = min(filter(None, (ends_before, order.effective_date)))
        last = ends_before - dt.timedelta(days=1) if ends_before else None
        services = []
        for service in order.services:
            valid_to = service.valid_to
            if last is not None:
                valid_to = last if valid_to is None else min(valid_to, last)
            if valid_to is None or valid_to >= service.valid_from:
                services.append(
                    ServiceRecord(service.code, service.category, service.hours_per_month, service.valid_from, valid_to)
                )
        return cls(
            order.provider_org.digits, order.person.personnummer.digits, tuple(services), order.double_staffing, tenant
        )


def _current_states(orders: Iterable[Order | OrderRecord]) -> Iterator[OrderRecord]:
    """Records as given; of Order objects the highest version of each order id, a cancellation
    without services applied to the highest version before it."""
    versions: dict[str, list[Order]] = {}
    for order in orders:
        if isinstance(order, OrderRecord):
            yield order
        elif isinstance(order, Order):
            versions.setdefault(order.order_id, []).append(order)
        else:
            raise TypeError(f"an order is an Order or an OrderRecord, not {type(order).__name__}")
    for history in versions.values():
        history.sort(key=lambda order: order.version)
        latest = history[-1]
        if latest.kind == "cancel" and not latest.services:
            states = [order for order in history if order.kind != "cancel"]
            if not states:
                continue  # a cancellation of an order never seen: nothing was ordered
            yield OrderRecord.from_order(states[-1], ends_before=latest.effective_date)
        else:
            yield OrderRecord.from_order(latest)


def ordered_minutes(period: Period, orders: Iterable[Order | OrderRecord]) -> dict[tuple[str, str], int]:
    """Minutes ordered in the period per (provider, service category): each service's hours per
    month for the share of the month it was valid, as the caps count them (without tolerance)."""
    first, days = period.first_day, period.days
    ordered: dict[tuple[str, str], Decimal] = {}
    for record in _current_states(orders):
        for service in record.services:
            start = max((service.valid_from - first).days, 0)
            stop = min((service.valid_to - first).days if service.valid_to else days - 1, days - 1)
            if start <= stop:
                key = (record.provider_org, service.category)
                share = service.hours_per_month * _SIXTY * (stop - start + 1) / days
                ordered[key] = ordered.get(key, Decimal(0)) + share
    return {key: int(minutes.to_integral_value()) for key, minutes in ordered.items()}


class _Order:
    """An order seen from the period: the service codes valid on each day of the month."""

    __slots__ = ("codes_by_day", "category_of", "double_staffing")

    def __init__(
        self, codes_by_day: list[frozenset[str] | None], category_of: dict[str, str], double_staffing: bool
    ) -> None:
        self.codes_by_day = codes_by_day
        self.category_of = category_of
        self.double_staffing = double_staffing


class _Contract:
    """All orders of one provider for one person in the period, and the month's caps."""

    __slots__ = ("records", "orders", "caps")

    def __init__(self) -> None:
        self.records: list[OrderRecord] = []
        self.orders: list[_Order] | None = None
        self.caps: dict[str, int] = {}

    def prepare(self, first: dt.date, days: int, tolerance: Decimal) -> None:
        """Build the per-day view of a month of `days` days from `first`, and the caps (once,
        when the group's visits arrive)."""
        ordered = {category: Decimal(0) for category in CATEGORIES}  # hours x days active
        orders = []
        for record in self.records:
            spans = []
            for service in record.services:
                start = max((service.valid_from - first).days, 0)
                stop = min((service.valid_to - first).days if service.valid_to else days - 1, days - 1)
                if start <= stop:
                    spans.append((service, start, stop))
                    ordered[service.category] += service.hours_per_month * (stop - start + 1)
            if not spans:
                continue
            if all(start == 0 and stop == days - 1 for _, start, stop in spans):
                codes_by_day = [frozenset(service.code for service, _, _ in spans)] * days
            else:
                sets: dict[frozenset[str], frozenset[str]] = {}
                codes_by_day = []
                for day in range(days):
                    codes = frozenset(service.code for service, start, stop in spans if start <= day <= stop)
                    codes_by_day.append(sets.setdefault(codes, codes) if codes else None)
            category_of = {service.code: service.category for service, _, _ in spans}
            orders.append(_Order(codes_by_day, category_of, record.double_staffing))
        factor = _SIXTY * tolerance
        self.caps = {category: int(hours * factor // days) for category, hours in ordered.items()}
        self.orders = orders


# --- outcomes -------------------------------------------------------------------------------


class Outcome:
    """One visit's outcome inside the engine (light); `document()` is the pydantic `VisitOutcome`."""

    __slots__ = (
        "visit_id",
        "version",
        "provider_org",
        "customer",
        "actual_start",
        "paid",
        "reason",
        "category",
        "band",
        "duration_minutes",
        "paid_minutes",
        "rate",
        "warnings",
    )

    def __init__(
        self,
        visit_id: str,
        version: int,
        provider_org: Any,
        customer: Any,
        actual_start: dt.datetime | None,
        reason: str | None,
        band: str | None,
        duration_minutes: int | None,
    ) -> None:
        self.visit_id = visit_id
        self.version = version
        self.provider_org = provider_org
        self.customer = customer
        self.actual_start = actual_start
        self.paid = reason is None
        self.reason = reason
        self.band = band
        self.duration_minutes = duration_minutes
        self.category: str | None = None
        self.paid_minutes = 0
        self.rate: Decimal | None = None
        self.warnings: list[str] = []

    def document(self) -> VisitOutcome:
        return VisitOutcome(
            visit_id=self.visit_id,
            version=self.version,
            provider_org=self.provider_org,
            customer=self.customer,
            actual_start=self.actual_start,
            paid=self.paid,
            reason=self.reason,
            category=self.category,
            band=self.band,
            duration_minutes=self.duration_minutes,
            paid_minutes=self.paid_minutes,
            rate=self.rate,
            warnings=list(self.warnings),
        )

    def __repr__(self) -> str:
        state = f"paid {self.paid_minutes} min" if self.paid else self.reason
        return f"Outcome({self.visit_id} v{self.version}: {state}, {self.category}/{self.band}, {self.warnings})"


@dataclass(frozen=True)
class RunResult:
    """A finished run. `outcomes` holds `VisitOutcome`s as chosen by `run(keep=...)`, in input
    group order and by actual start within a group; `bases` is keyed by the provider's organisation
    number digits. `visits` counts the visits of the period (one per visit id, not per version),
    `reasons` the unpaid ones by reason, `warnings` the warnings on paid ones; `later_versions`
    the visits with a version received after the lock (left to a correction run); `outside_period`
    the visits given whose counted version starts in another period (left out)."""

    period: Period
    lock_at: dt.datetime
    bases: dict[str, ProviderBasis]
    outcomes: list[VisitOutcome] = field(default_factory=list)
    visits: int = 0
    paid: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    later_versions: int = 0
    outside_period: int = 0

    @property
    def total(self) -> Decimal:
        return sum((basis.total for basis in self.bases.values()), Decimal("0.00"))


def _digits(value: Any) -> str:
    return value if value.__class__ is str else value.digits


def _masked(person: str) -> str:
    return person[:8] + "-****"


# --- the engine -----------------------------------------------------------------------------


class RunStream:
    """The run of one period as a stream: iterate it (once) for each visit's `Outcome`, group by
    group in input order and by actual start within a group; then `bases()` and `result()`."""

    def __init__(
        self,
        period: Period,
        rules: Rules,
        orders: Iterable[Order | OrderRecord],
        visits_sorted: Iterable[tuple[Any, dt.datetime]],
        *,
        lock_override: dt.date | dt.datetime | None = None,
        tenant: str | None = None,
    ) -> None:
        self.period = period
        self.rules = rules
        self.lock_at = lock_date(period, rules, lock_override)
        self._lock_utc = self.lock_at.astimezone(dt.timezone.utc)
        self._first_day, self._days = period.first_day, period.days
        self._visits = visits_sorted
        self._clock = PeriodClock(period, rules)
        self._max_minutes = rules.max_duration_hours * 60
        self._rates = self._rate_table()
        self._contracts: dict[tuple[str, str], _Contract] = {}
        for record in _current_states(orders):
            if tenant is not None and record.tenant is not None and record.tenant != tenant:
                raise ValueError(f"an order of tenant {record.tenant} in a run of tenant {tenant}")
            self._contracts.setdefault((record.provider_org, record.person), _Contract()).records.append(record)
        self._lines: dict[str, list[tuple]] = {}
        self._providers: dict[str, Any] = {}
        self._started = self._done = False
        self.visits = self.paid = self.later_versions = self.outside_period = 0
        self.reasons: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()

    def _rate_table(self) -> dict[tuple[str, str], list[Decimal]]:
        """The rate of each category and band on each day of the period."""
        table = {}
        days = [self.period.first_day + dt.timedelta(days=i) for i in range(self.period.days)]
        for category in CATEGORIES:
            for band in BANDS:
                rules = sorted(
                    (r for r in self.rules.rates if r.category == category and r.band == band),
                    key=lambda r: r.valid_from,
                )
                rates = []
                for day in days:
                    valid = [r.sek_per_hour for r in rules if r.valid_from <= day]
                    if not valid:
                        raise ValueError(f"no {category}/{band} rate valid on {day}")
                    rates.append(valid[-1])
                table[category, band] = rates
        return table

    def __iter__(self) -> Iterator[Outcome]:
        if self._started:
            raise RuntimeError("a run stream can be iterated once")
        self._started = True
        return self._outcomes()

    def _outcomes(self) -> Iterator[Outcome]:
        lock = self._lock_utc  # received_at in UTC (as PostgreSQL gives it) compares without a zone lookup
        provider = person = None
        versions: dict[str, list] = {}
        for visit, received_at in self._visits:
            p = visit.provider_org
            if p.__class__ is not str:
                p = p.digits
            c = visit.customer_pnr
            if c.__class__ is not str:
                c = c.digits
            if c != person or p != provider:
                if provider is not None:
                    if (p, c) < (provider, person):
                        raise ValueError(
                            f"visits out of order: provider {p} customer {_masked(c)} came after provider "
                            f"{provider} customer {_masked(person)}; sort by provider, customer, actual start"
                        )
                    yield from self._settle(provider, person, versions)
                provider, person, versions = p, c, {}
            if received_at.tzinfo is None:
                raise ValueError(f"received_at of visit {visit.visit_id} is not timezone-aware")
            on_time = received_at < lock
            version = visit.version
            visit_id = visit.visit_id
            entry = versions.get(visit_id)
            if entry is None:
                versions[visit_id] = [visit, version, visit, version] if on_time else [None, 0, visit, version]
            else:
                if on_time and version > entry[1]:
                    entry[0], entry[1] = visit, version
                if version > entry[3]:
                    entry[2], entry[3] = visit, version
        if provider is not None:
            yield from self._settle(provider, person, versions)
        self._done = True

    def _settle(self, provider: str, person: str, versions: dict[str, list]) -> list[Outcome]:
        """Decide every visit of one (provider, customer) group; add its lines."""
        clock = self._clock
        bounds, pieces, piece_day, piece_band = clock.bounds, clock.pieces, clock.day, clock.band
        period_start, period_end = clock.bounds[0], clock.bounds[-1]
        rounding = self.rules.rounding_minutes
        max_minutes = self._max_minutes
        contract = self._contracts.pop((provider, person), None)  # groups come once: free it after
        if contract is not None:
            contract.prepare(self._first_day, self._days, self.rules.tolerance)
        orders = contract.orders if contract is not None else ()
        reasons, warnings = self.reasons, self.warnings

        decided: list[tuple[float, str, Outcome]] = []
        paid: list[tuple[float, str, Outcome]] = []
        for visit_id, (counted, counted_version, highest, highest_version) in versions.items():
            visit = counted if counted is not None else highest
            start, end = visit.actual_start, visit.actual_end
            piece = -1
            if start is not None:
                ts = start.timestamp()
                piece = bisect_right(bounds, ts) - 1  # PeriodClock.locate, inlined
                if not 0 <= piece < pieces:
                    self.outside_period += 1
                    continue
            else:
                ts = _INF
                planned = visit.planned_start
                if planned is not None and not period_start <= planned.timestamp() < period_end:
                    self.outside_period += 1
                    continue
            if counted is not None and highest_version > counted_version:
                self.later_versions += 1
            band = piece_band[piece] if piece >= 0 else None
            duration = None
            positive = False
            if start is not None and end is not None:
                if not (start.microsecond or end.microsecond):  # whole seconds: the timestamps are exact
                    seconds = end.timestamp() - ts
                    positive = seconds > 0
                    duration = int(seconds) // 60 if positive else 0
                else:
                    delta = end - start
                    if end.tzinfo is start.tzinfo:  # same zone object: Python subtracts wall times
                        delta -= end.utcoffset() - start.utcoffset()
                    positive = delta > _ZERO
                    duration = (delta.days * 86400 + delta.seconds) // 60 if positive else 0
            services = visit.services
            order = None
            if not visit.approved:
                reason = "not_approved"
            elif visit.declined:
                reason = "declined"
            elif not positive:
                reason = "incomplete"
            elif not services:
                reason = "no_service"
            elif duration > max_minutes:
                reason = "too_long"
            elif counted is None:
                reason = "after_lock"
            else:
                reason = "outside_order_period" if contract is not None else "no_order"
                day = piece_day[piece]
                for candidate in orders:
                    codes = candidate.codes_by_day[day]
                    if codes is not None:
                        reason = "unknown_service"
                        if codes.issuperset(services):
                            order, reason = candidate, None
                            break
            outcome = Outcome(
                visit_id, visit.version, visit.provider_org, visit.customer_pnr, start, reason, band, duration
            )
            decided.append((ts, visit_id, outcome))
            if order is None:
                continue
            category = (
                order.category_of[services[0]]
                if len(services) == 1
                else ("omsorg" if "omsorg" in [order.category_of[code] for code in services] else "service")
            )
            minutes = duration
            step = rounding[band]
            if step:
                minutes = -(-minutes // step) * step
            if visit.confirmation == "manual":
                outcome.warnings.append("manual")
            if visit.double_staffing:
                if order.double_staffing:
                    minutes *= 2
                else:
                    outcome.warnings.append("double_staffing_not_granted")
            outcome.category = category
            outcome.paid_minutes = minutes
            outcome.rate = self._rates[category, band][piece_day[piece]]
            paid.append((ts, visit_id, outcome))

        if not decided:
            return []
        # the ordered-time cap, in order of actual start
        paid.sort(key=_START_THEN_ID)
        left = dict(contract.caps) if contract is not None else {}
        lines: dict[tuple[str, str, Decimal], int] = {}
        for _, _, outcome in paid:
            category = outcome.category
            minutes = outcome.paid_minutes
            room = left[category]
            if minutes > room:
                minutes = outcome.paid_minutes = room
                outcome.warnings.append("over_ordered")
            left[category] = room - minutes
            if minutes:
                key = (category, outcome.band, outcome.rate)
                lines[key] = lines.get(key, 0) + minutes

        first = decided[0][2]
        self._providers.setdefault(provider, first.provider_org)
        provider_lines = self._lines.setdefault(provider, [])
        for (category, band, rate), minutes in sorted(lines.items()):
            provider_lines.append((first.customer, category, band, rate, minutes))

        decided.sort(key=_START_THEN_ID)
        result = [outcome for _, _, outcome in decided]
        unpaid = 0
        for outcome in result:
            if outcome.reason is not None:
                reasons[outcome.reason] += 1
                unpaid += 1
            elif outcome.warnings:
                for warning in outcome.warnings:
                    warnings[warning] += 1
        self.visits += len(result)
        self.paid += len(result) - unpaid
        return result

    def bases(self) -> dict[str, ProviderBasis]:
        """Each provider's basis (keyed by organisation number digits); only once the stream is exhausted."""
        if not self._done:
            raise RuntimeError("the run stream is not exhausted: iterate it to the end first")
        bases = {}
        for provider, org in self._providers.items():
            org = org if isinstance(org, OrganisationNumber) else OrganisationNumber(_digits(org))
            lines = []
            total = Decimal("0.00")
            for customer, category, band, rate, minutes in self._lines.get(provider, ()):
                amount = round_ore(minutes * rate / _SIXTY)
                total += amount
                customer = customer if isinstance(customer, Personnummer) else Personnummer(_digits(customer))
                lines.append(
                    BasisLine(
                        provider_org=org,
                        customer=customer,
                        category=category,
                        band=band,
                        rate=rate,
                        minutes=minutes,
                        amount=amount,
                    )
                )
            bases[provider] = ProviderBasis(provider_org=org, period=self.period, lines=lines, total=total)
        return bases

    def result(self, outcomes: list[VisitOutcome] | None = None) -> RunResult:
        return RunResult(
            period=self.period,
            lock_at=self.lock_at,
            bases=self.bases(),
            outcomes=outcomes or [],
            visits=self.visits,
            paid=self.paid,
            reasons=self.reasons,
            warnings=self.warnings,
            later_versions=self.later_versions,
            outside_period=self.outside_period,
        )


def run(
    period: Period,
    rules: Rules,
    orders: Iterable[Order | OrderRecord],
    visits_sorted: Iterable[tuple[Any, dt.datetime]],
    *,
    keep: Literal["review", "all", "none"] = "review",
    lock_override: dt.date | dt.datetime | None = None,
    tenant: str | None = None,
) -> RunResult:
    """Run the rules over a period's visits; see the module docstring for the input order and `keep`."""
    if keep not in ("review", "all", "none"):
        raise ValueError(f"keep is review, all or none, not {keep!r}")
    stream = RunStream(period, rules, orders, visits_sorted, lock_override=lock_override, tenant=tenant)
    kept = []
    if keep == "none":
        for _ in stream:
            pass
    else:
        everything = keep == "all"
        for outcome in stream:
            if everything or not outcome.paid or outcome.warnings:
                kept.append(outcome.document())
    return stream.result(kept)
