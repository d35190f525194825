"""Random store populations and segment condition documents for the SQL/Python equivalence test.

Values are drawn from small pools chosen to collide: the same numbers as JSON numbers, numeric text
and operands; dates as text in several forms and as instants a few hours around the window edges.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# --- values ------------------------------------------------------------------------------------------

NUMBERS: list[Any] = [0, 1, 2, 5, 10, 12, -3, 2.5, 0.1, 12.5, 10.0, -0.5, 1e16, 1.5e-07, 123456789, 7.25]
NUMERIC_TEXT = ["12.50", " 7 ", "1e1", "+3", "-0", ".5", "5.", "10", "0.10", "12.5", "2.50", "1E-7", "007",
                "1.5e-7", "-3.0", "12.50000000000000000001"]
NOT_NUMERIC_TEXT = ["0x10", "12,5", "abc", "", "VIP", "vip", "v", "VI", "true", "1e", "e5", "--1", "1.2.3",
                    "a%b", "a_b", "100%"]
DATE_TEXT = ["2026-03-01", "2026-02-28T10:00:00Z", "2026-03-02T09:00:00+01:00", "2026-03-02 09:00",
             "2026-02-30", "2026-03-02T09:00:00.5", "2026-03-02T08:00:00.123456Z", "2025-03-05",
             "2024-02-29", "2026-01-31T23:30:00-02:00", " 2026-03-02 ", "2026-13-01", "2026-03-02T24:00",
             "1990-03-04", "2000-02-29T12:00:00Z", "2026-02-24T09:00:00Z", "2026-03-08"]
TEXT = NUMERIC_TEXT + NOT_NUMERIC_TEXT + DATE_TEXT

scalars = st.one_of(
    st.sampled_from(NUMBERS), st.sampled_from(TEXT), st.booleans(), st.none(),
)
json_values = st.one_of(
    scalars, scalars,
    st.lists(st.one_of(st.sampled_from(NUMBERS), st.sampled_from(TEXT[:20]), st.booleans()), max_size=3),
    st.dictionaries(st.sampled_from(["k", "a", "0"]), scalars, max_size=2),
)
PROPERTY_KEYS = ["a", "b", "score", "birthday", "0"]
properties = st.dictionaries(st.sampled_from(PROPERTY_KEYS), json_values, max_size=4)

# instants near the edges of the windows the conditions use
EDGES = [timedelta(0), timedelta(hours=1), timedelta(days=1), timedelta(days=3), timedelta(days=7),
         timedelta(days=30), timedelta(days=90), timedelta(days=400)]
instants = st.builds(
    lambda edge, nudge: NOW - edge + nudge,
    st.sampled_from(EDGES),
    st.sampled_from([timedelta(0), timedelta(microseconds=1), -timedelta(microseconds=1), timedelta(hours=5),
                     -timedelta(hours=5), timedelta(days=2)]),
)
maybe_instants = st.one_of(st.none(), instants)
operand_instants = st.sampled_from([
    NOW - timedelta(days=1), NOW - timedelta(days=30), NOW, NOW + timedelta(days=1),
    datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, 8, tzinfo=UTC), datetime(2026, 2, 28, 10, tzinfo=UTC),
])


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


# --- conditions ------------------------------------------------------------------------------------

ANY_OPS = ["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "not_contains", "starts_with",
           "exists", "within", "older_than", "before", "after", "anniversary_within"]
DURATIONS = ["1h", "1d", "3d", "7d", "30d", "90d", "400d"]
DAYS = ["1d", "3d", "7d", "30d", "400d"]


@st.composite
def free_operand(draw: st.DrawFn, op: str) -> Any:
    if op == "exists":
        return draw(st.booleans())
    if op in ("within", "older_than"):
        return draw(st.sampled_from(DURATIONS))
    if op == "anniversary_within":
        return draw(st.sampled_from(DAYS))
    if op in ("before", "after"):
        return draw(st.one_of(operand_instants.map(_iso), st.sampled_from(["2026-03-01", "2026-02-28T10:00:00+01:00"])))
    scalar = st.one_of(st.sampled_from(NUMBERS), st.sampled_from(TEXT), st.booleans())
    if op in ("in", "not_in"):
        return draw(st.lists(scalar, min_size=1, max_size=3))
    if op in ("contains", "not_contains"):
        return draw(st.one_of(st.sampled_from([*TEXT, "k", "a", "0", "V", "I", "%", "_"]), st.sampled_from(NUMBERS),
                              st.booleans()))
    if op == "starts_with":
        return draw(st.sampled_from(["", "V", "v", "1", "2026-03", "a%", "a_", " ", "VIP"]))
    return draw(scalar)


FREE_PATHS = ["profile.a", "profile.b", "profile.score", "profile.birthday", "profile.properties.a",
              "profile.properties.0", "profile.a.0", "profile.a.k", "profile.b.-1", "profile.a.0.k"]

# declared fields: (path, operators, operand strategy)
DECLARED: list[tuple[str, list[str], st.SearchStrategy[Any]]] = [
    ("profile.email", ["eq", "ne", "in", "not_in", "contains", "not_contains", "starts_with", "exists"],
     st.sampled_from(["a@x.io", "A@x.io", "x.io", "a", "", "b@y.org"])),
    ("profile.orders_count", ["eq", "ne", "gt", "gte", "lt", "lte", "exists"],
     st.sampled_from([0, 1, 2, 2.5, "3", 10])),
    ("profile.total_spent.USD", ["eq", "ne", "gt", "gte", "lt", "lte", "exists"],
     st.sampled_from([0, 10, 10.5, "12.50", 99.99, 100, 0.01])),
    ("profile.total_spent.IDR", ["eq", "ne", "gt", "gte", "lt", "lte", "exists"],
     st.sampled_from([0, 150000, "150000.5", 1000000])),
    ("profile.last_order_at", ["eq", "gt", "lt", "gte", "within", "older_than", "before", "after", "exists",
                               "anniversary_within"], st.none()),
    ("profile.created_at", ["within", "older_than", "before", "after", "anniversary_within", "lte"], st.none()),
    ("profile.tags", ["contains", "not_contains", "in", "not_in", "exists"],
     st.sampled_from(["vip", "VIP", "new", "a b"])),
    ("profile.consent.email", ["eq", "ne", "in", "starts_with"],
     st.sampled_from(["subscribed", "unsubscribed", "never_asked", "sub"])),
    ("profile.total_spent", ["contains", "not_contains", "exists"], st.sampled_from(["USD", "IDR", "BRL"])),
    ("profile.locale", ["eq", "ne", "exists", "in"], st.sampled_from(["en", "pt-BR", "id"])),
]


@st.composite
def declared_comparison(draw: st.DrawFn) -> dict[str, Any]:
    path, ops, operands = draw(st.sampled_from(DECLARED))
    op = draw(st.sampled_from(ops))
    if op == "exists":
        value: Any = draw(st.booleans())
    elif op in ("within", "older_than"):
        value = draw(st.sampled_from(DURATIONS))
    elif op == "anniversary_within":
        value = draw(st.sampled_from(DAYS))
    elif op in ("before", "after", "eq", "gt", "lt", "gte", "lte") and "_at" in path:
        value = _iso(draw(operand_instants))
    elif op in ("in", "not_in"):
        value = draw(st.lists(operands, min_size=1, max_size=3))
    else:
        value = draw(operands)
    return {"field": path, op: value}


@st.composite
def free_comparison(draw: st.DrawFn, paths: list[str] | None = None) -> dict[str, Any]:
    path = draw(st.sampled_from(paths or FREE_PATHS))
    op = draw(st.sampled_from(ANY_OPS))
    return {"field": path, op: draw(free_operand(op))}


EVENT_TYPES = ["viewed", "clicked", "order_placed"]
EVENT_PATHS = ["event.price", "event.channel", "event.a", "event.properties.price", "event.occurred_at", "event.id"]


@st.composite
def event_history(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"event": draw(st.sampled_from(EVENT_TYPES))}
    window = draw(st.sampled_from(["none", "within", "since"]))
    if window == "within":
        spec["within"] = draw(st.sampled_from(DURATIONS))
    elif window == "since":
        spec["since"] = _iso(draw(operand_instants))
    if draw(st.booleans()):
        spec["where"] = draw(free_comparison(EVENT_PATHS))
    kind = draw(st.sampled_from(["exists", "count", "sum", "last_seen"]))
    doc: dict[str, Any] = {"history": spec}
    if kind == "exists":
        doc["exists"] = draw(st.booleans())
    elif kind == "count":
        doc["count"] = {draw(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"])): draw(st.integers(0, 3))}
    elif kind == "sum":
        doc["sum"] = {"of": draw(st.sampled_from(["price", "a", "properties.price"])),
                      draw(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"])):
                          draw(st.sampled_from([0, 1, 2.5, 10, 12.5, 22.6, -3]))}
    else:
        doc["last_seen"] = {draw(st.sampled_from(["within", "older_than"])): draw(st.sampled_from(DURATIONS))}
    return doc


def leaves() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(free_comparison(), free_comparison(), declared_comparison(), event_history())


def conditions(depth: int = 3) -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        leaves(),
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda cs: {"all": cs}),
            st.lists(inner, min_size=1, max_size=3).map(lambda cs: {"any": cs}),
            inner.map(lambda c: {"not": c}),
        ),
        max_leaves=5,
    )


# --- populations -----------------------------------------------------------------------------------

MONEY = st.sampled_from(["0", "10", "10.50", "12.50", "99.99", "100", "0.01", "150000", "150000.50", "1000000"])


@st.composite
def profile_rows(draw: st.DrawFn, index: int) -> dict[str, Any]:
    last = draw(maybe_instants)
    first = None if last is None else last - draw(st.sampled_from([timedelta(0), timedelta(days=10),
                                                                   timedelta(days=100)]))
    return {
        "id": f"p{index:02d}",
        "email": draw(st.sampled_from([None, "a@x.io", "A@x.io", "b@y.org", ""])),
        "phone": None,
        "locale": draw(st.sampled_from([None, "en", "pt-BR"])),
        "timezone": None,
        "properties": draw(properties),
        "tags": draw(st.lists(st.sampled_from(["vip", "VIP", "new", "a b"]), max_size=3, unique=True)),
        "consent_email": draw(st.sampled_from(["subscribed", "unsubscribed", "never_asked"])),
        "consent_sms": "never_asked",
        "consent_push": "never_asked",
        "orders_count": draw(st.integers(0, 4)) if last is not None else 0,
        "total_spent": draw(st.dictionaries(st.sampled_from(["USD", "IDR", "BRL"]), MONEY, max_size=2)),
        "first_order_at": first,
        "last_order_at": last,
        "last_active_at": draw(maybe_instants),
        "created_at": draw(instants),
        "updated_at": NOW,
        "merged_into": "p00" if index > 0 and draw(st.integers(0, 9)) == 0 else None,
    }


@st.composite
def event_rows(draw: st.DrawFn, profile_ids: list[str]) -> list[dict[str, Any]]:
    rows = []
    for i in range(draw(st.integers(0, 10))):
        props = draw(st.dictionaries(st.sampled_from(["price", "channel", "a"]), json_values, max_size=3))
        when = draw(instants)
        rows.append({
            "id": f"e{i:03d}", "type": draw(st.sampled_from(EVENT_TYPES)),
            "profile_id": draw(st.sampled_from(profile_ids)),
            "occurred_at": when, "received_at": when, "source": "api", "idempotency_key": f"k{i}",
            "properties": props,
        })
    return rows


@st.composite
def populations(draw: st.DrawFn) -> dict[str, list[dict[str, Any]]]:
    n = draw(st.integers(1, 6))
    profiles = [draw(profile_rows(i)) for i in range(n)]
    ids = [p["id"] for p in profiles]
    return {"profiles": profiles, "events": draw(event_rows(ids))}


_ = Decimal


# --- orders, carts, messages, identities, memberships, products, statistics --------------------------

CURRENCIES = ["USD", "BRL", "IDR"]


@st.composite
def order_rows(draw: st.DrawFn, profile_ids: list[str]) -> list[dict[str, Any]]:
    rows = []
    for i in range(draw(st.integers(0, 6))):
        items = draw(st.lists(st.fixed_dictionaries({
            "product_id": st.sampled_from(["pr1", "pr2", "pr3", 7, ""]),
            "sku": st.sampled_from(["a", "b", "SKU-1", 12]),
            "quantity": st.integers(0, 3),
            "price": st.sampled_from(["12.50", "3", 4.5]),
        }), max_size=3))
        code = st.one_of(st.sampled_from(["a", "b", "SAVE10", ""]),
                         st.builds(lambda c: {"code": c}, st.sampled_from(["a", "b"])))
        codes = draw(st.one_of(st.none(), st.lists(code, max_size=2)))
        props: dict[str, Any] = {} if codes is None else {"discount_codes": codes}
        placed = draw(instants)
        rows.append({
            "id": f"o{i:03d}", "profile_id": draw(st.sampled_from(profile_ids)), "number": str(i),
            "status": draw(st.sampled_from(["open", "cancelled"])), "financial_status": "paid",
            "fulfillment_status": "unfulfilled", "currency": draw(st.sampled_from(CURRENCIES)),
            "total_minor": draw(st.sampled_from([0, 1, 50, 250, 1000, 1050, 2260, 15000050, 99999])),
            "refunded_minor": 0, "tags": draw(st.lists(st.sampled_from(["a", "b"]), max_size=2)),
            "shipping_country": None, "line_items": items, "properties": props, "placed_at": placed,
            "updated_at": placed,
        })
    return rows


@st.composite
def cart_rows(draw: st.DrawFn, profile_ids: list[str]) -> list[dict[str, Any]]:
    rows = []
    for i in range(draw(st.integers(0, 4))):
        at = draw(instants)
        rows.append({
            "id": f"c{i:03d}", "profile_id": draw(st.sampled_from(profile_ids)), "kind": "cart",
            "currency": draw(st.sampled_from(CURRENCIES)),
            "value_minor": draw(st.sampled_from([0, 50, 250, 1000, 99999])),
            "items": [{"product_id": "pr1", "quantity": draw(st.integers(0, 3))}], "checkout_url": None,
            "last_activity_at": at, "converted_at": draw(st.one_of(st.none(), st.just(at))), "order_id": None,
            "created_at": at,
        })
    return rows


@st.composite
def message_rows(draw: st.DrawFn, profile_ids: list[str]) -> list[dict[str, Any]]:
    rows = []
    for i in range(draw(st.integers(0, 4))):
        at = draw(instants)
        rows.append({
            "id": f"m{i:03d}", "channel": draw(st.sampled_from(["email", "sms"])), "idempotency_key": f"m{i}",
            "payload": {}, "status": "sent", "attempts": 1, "created_at": at, "updated_at": at,
            "profile_id": draw(st.sampled_from(profile_ids)),
            "kind": draw(st.sampled_from(["marketing", "transactional"])),
            "opened_at": draw(maybe_instants), "clicked_at": draw(maybe_instants),
        })
    return rows


def product_rows() -> list[dict[str, Any]]:
    return [
        {"id": "pr1", "title": "A", "status": "published", "tags": ["a", "sale"], "vendor": None,
         "product_type": "a", "properties": {}, "created_at": NOW, "updated_at": NOW},
        {"id": "pr2", "title": "B", "status": "published", "tags": [], "vendor": None,
         "product_type": "", "properties": {}, "created_at": NOW, "updated_at": NOW},
        {"id": "7", "title": "C", "status": "published", "tags": ["b"], "vendor": None,
         "product_type": "b", "properties": {}, "created_at": NOW, "updated_at": NOW},
    ]


@st.composite
def full_populations(draw: st.DrawFn) -> dict[str, list[dict[str, Any]]]:
    population = draw(populations())
    ids = [p["id"] for p in population["profiles"]]
    population["orders"] = draw(order_rows(ids))
    population["carts"] = draw(cart_rows(ids))
    population["outbox"] = draw(message_rows(ids))
    population["products"] = product_rows()
    population["identities"] = [
        {"kind": kind, "value": f"{kind}:{pid}", "profile_id": pid, "created_at": NOW}
        for pid in ids for kind in draw(st.lists(st.sampled_from(["email", "phone", "customer_id"]), unique=True))
    ]
    population["segment_members"] = [
        {"segment_id": seg, "profile_id": pid, "entered_at": NOW}
        for pid in ids for seg in draw(st.lists(st.sampled_from(["vip", "lapsed"]), unique=True))
    ]
    return population


def segment_stats() -> st.SearchStrategy[Any]:
    from storeflow.flows.segment_stats import SegmentStats

    def build(currency: str, r: list[int], f: list[int], m: list[int], pm: int, pf: int) -> SegmentStats:
        return SegmentStats(
            currency=currency, recency=tuple(timedelta(days=d) for d in sorted(r)),  # type: ignore[arg-type]
            frequency=tuple(sorted(f)), monetary=tuple(Decimal(x) / 2 for x in sorted(m)),  # type: ignore[arg-type]
            monetary_percentiles=tuple(Decimal(pm * i) / 100 for i in range(1, 100)),
            frequency_percentiles=tuple(pf * i // 100 for i in range(1, 100)), customers=10,
        )

    four = st.lists(st.integers(0, 400), min_size=4, max_size=4)
    counts = st.lists(st.integers(0, 5), min_size=4, max_size=4)
    return st.one_of(st.none(), st.builds(build, st.sampled_from(CURRENCIES), four, counts, four,
                                          st.integers(0, 200), st.integers(0, 5)))
