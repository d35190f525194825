"""Message templates: the sandbox, the record context, babel formatting, and check_template."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from storeflow.errors import PermanentActionError
from storeflow.flows import TEMPLATE_ROOTS, RecordView, TemplateError, build_context, check_template, render
from storeflow.flows.templates import MAX_OUTPUT

NBSP = "\xa0"
NNBSP = "\u202f"

ITEMS_TEMPLATE = (
    "{% for item in order.line_items %}\n"
    "{{ item.quantity }} x {{ item.title }}: {{ item.price | money }}\n"
    "{% endfor %}\n"
    "Total: {{ order.total | money }}"
)


def order_record(currency: str, total: str, items: list[dict[str, Any]], **profile: Any) -> dict[str, Any]:
    return {
        "event": {"type": "order_placed", "properties": {"order_id": "o1", "coupon": "SPRING"}},
        "profile": {"email": "ana@example.com", "tags": ["vip"], "properties": {}, **profile},
        "order": {
            "id": "o1",
            "number": "1001",
            "currency": currency,
            "total": Decimal(total),
            "line_items": items,
            "placed_at": datetime(2026, 3, 14, 23, 30, tzinfo=UTC),
        },
        "cart": None,
        "product": None,
        "run": {"id": "run_1"},
    }


def context_for(record: dict[str, Any], **store: str) -> dict[str, Any]:
    return build_context(
        record,
        locale=store.get("locale", "en_US"),
        timezone=store.get("timezone", "UTC"),
        currency=store.get("currency", "USD"),
        flow={"id": "thanks", "name": "Thank you"},
        links={"unsubscribe": "https://shop.example/u/abc?x=1&y=2"},
    )


# --- money, numbers and dates -----------------------------------------------------------------


def test_order_line_items_in_idr_for_id_id() -> None:
    items = [
        {"title": "Batik", "quantity": 2, "price": "75000"},  # prices are stored as decimal text
        {"title": "Kopi", "quantity": 1, "price": Decimal("0")},
    ]
    record = order_record("IDR", "150000", items, locale="id_ID", timezone="Asia/Jakarta")
    text = render(ITEMS_TEMPLATE, context_for(record), autoescape=False)
    assert text == "2 x Batik: Rp75.000\n1 x Kopi: Rp0\nTotal: Rp150.000"


def test_order_line_items_in_brl_for_pt_br() -> None:
    items = [{"title": "Camiseta", "quantity": 1, "price": "99.90"}]
    record = order_record("BRL", "99.90", items, locale="pt_BR", timezone="America/Sao_Paulo")
    text = render(ITEMS_TEMPLATE, context_for(record), autoescape=True)
    assert text == f"1 x Camiseta: R${NBSP}99,90\nTotal: R${NBSP}99,90"


def test_order_line_items_in_usd_for_en_us() -> None:
    items = [{"title": "Mug", "quantity": 3, "price": 411.5}]  # a float goes through its repr, not binary
    record = order_record("USD", "1234.50", items, locale="en_US")
    text = render(ITEMS_TEMPLATE, context_for(record), autoescape=False)
    assert text == "3 x Mug: $411.50\nTotal: $1,234.50"


def test_money_keeps_decimals_exact_and_takes_a_currency() -> None:
    record = order_record("USD", "0.30", [], locale="pt_BR")
    ctx = context_for(record)
    assert render("{{ order.total | money }}", ctx, autoescape=False) == f"US${NBSP}0,30"
    assert render("{{ order.total | money('BRL') }}", ctx, autoescape=False) == f"R${NBSP}0,30"
    assert render("{{ '12345678901234567.89' | money }}", ctx, autoescape=False) == (
        f"US${NBSP}12.345.678.901.234.567,89"
    )


def test_currency_falls_back_to_the_cart_then_the_store() -> None:
    cart_only = {"profile": {"locale": "en_US"}, "cart": {"currency": "EUR", "value": Decimal("5")}}
    assert render("{{ cart.value | money }}", context_for(cart_only), autoescape=False) == "€5.00"
    nothing = {"profile": {"locale": "id_ID"}}
    assert render("{{ 45000 | money }}", context_for(nothing, currency="IDR"), autoescape=False) == "Rp45.000"


def test_number_and_percent_follow_the_locale() -> None:
    ctx = context_for({"profile": {"locale": "id-ID"}})  # - or _ both name a locale
    assert render("{{ 1234567.891 | number }}", ctx, autoescape=False) == "1.234.567,891"
    assert render("{{ 0.255 | percent }}", context_for({"profile": {"locale": "pt_BR"}}), autoescape=False) == "26%"


def test_a_datetime_is_shown_in_the_profiles_time_zone() -> None:
    record = order_record("IDR", "1", [], locale="id_ID", timezone="Asia/Jakarta")
    ctx = context_for(record)
    # 23:30 UTC on 14 March is 06:30 on 15 March in Jakarta (UTC+7)
    assert render("{{ order.placed_at | datetime }}", ctx, autoescape=False) == "15 Mar 2026 06.30.00"
    assert render("{{ order.placed_at | date('long') }}", ctx, autoescape=False) == "15 Maret 2026"
    assert render("{{ order.placed_at | datetime('HH:mm') }}", ctx, autoescape=False) == "06:30"
    english = context_for(order_record("IDR", "1", [], locale="en_US", timezone="Asia/Jakarta"))
    assert render("{{ order.placed_at | datetime }}", english, autoescape=False) == f"Mar 15, 2026, 6:30:00{NNBSP}AM"


def test_store_locale_and_zone_when_the_profile_has_none_or_bad_ones() -> None:
    record = order_record("BRL", "1", [], locale="xx_NOPE", timezone="Mars/Olympus")
    ctx = context_for(record, locale="pt_BR", timezone="America/Sao_Paulo")
    assert render("{{ order.placed_at | datetime('short') }}", ctx, autoescape=False) == "14/03/2026 20:30"
    assert render("{{ store.locale }} {{ store.timezone }}", ctx, autoescape=False) == "pt_BR America/Sao_Paulo"


def test_plain_dates_are_not_shifted_by_time_zones() -> None:
    record = {
        "profile": {"locale": "pt_BR", "timezone": "Pacific/Kiritimati", "properties": {"birthday": "1990-05-17"}}
    }
    ctx = context_for(record)
    assert render("{{ profile.birthday | date }}", ctx, autoescape=False) == "17 de mai. de 1990"
    ctx["run"] = RecordView({"day": date(2026, 1, 2)})
    assert render("{{ run.day | date('short') }}", ctx, autoescape=False) == "02/01/2026"


def test_missing_values_format_as_nothing() -> None:
    ctx = context_for({"profile": {"properties": {"first_name": None}}})
    source = "[{{ order.total | money }}|{{ profile.first_name }}|{{ profile.nope | datetime }}|{{ cart.x.y }}]"
    assert render(source, ctx, autoescape=False) == "[|||]"


# --- the context --------------------------------------------------------------------------------


def test_profile_and_event_shorthand_reads_properties() -> None:
    record = order_record("USD", "1", [], properties={"first_name": "Ana", "email": "shadowed@example.com"})
    ctx = context_for(record)
    source = (
        "{{ profile.first_name }} {{ profile['first_name'] }} {{ profile.properties.first_name }} {{ profile.email }}"
    )
    assert render(source, ctx, autoescape=False) == "Ana Ana Ana ana@example.com"  # record keys win
    assert render("{{ event.coupon }} {{ event.type }}", ctx, autoescape=False) == "SPRING order_placed"
    assert render("{{ order.coupon }}", ctx, autoescape=False) == ""  # no shorthand outside profile and event


def test_defaults_for_missing_values_and_missing_records() -> None:
    ctx = context_for({"profile": {"properties": {}}})
    assert render('Hi {{ profile.first_name or "there" }}', ctx, autoescape=False) == "Hi there"
    no_profile = context_for({})
    assert render('Hi {{ profile.first_name or "there" }}!', no_profile, autoescape=False) == "Hi there!"
    assert render("{% if order %}order{% else %}none{% endif %}", no_profile, autoescape=False) == "none"


def test_record_keys_shadow_mapping_methods_and_lists_are_read_only() -> None:
    record = {"cart": {"items": [{"title": "Hat"}, {"title": "Scarf"}], "currency": "USD"}}
    ctx = context_for(record)
    assert render("{% for i in cart.items %}{{ i.title }};{% endfor %}", ctx, autoescape=False) == "Hat;Scarf;"
    with pytest.raises(TemplateError):
        render("{{ cart.items.append(1) }}", ctx, autoescape=False)
    assert record["cart"]["items"] == [{"title": "Hat"}, {"title": "Scarf"}]


def test_flow_store_and_links_roots() -> None:
    ctx = context_for(order_record("USD", "1", []), currency="USD")
    source = "{{ flow.name }} / {{ store.currency }} / {{ links.unsubscribe }}"
    assert render(source, ctx, autoescape=False) == "Thank you / USD / https://shop.example/u/abc?x=1&y=2"
    assert set(TEMPLATE_ROOTS) <= {*ctx, "event", "profile", "order", "cart", "product", "run"}


def test_tojson_writes_records_exactly() -> None:
    ctx = context_for(order_record("USD", "12.50", [{"sku": "A", "price": "1.10"}]))
    assert render("{{ order.line_items | tojson }}", ctx, autoescape=False) == '[{"price": "1.10", "sku": "A"}]'
    assert render("{{ order.total | tojson }}", ctx, autoescape=False) == '"12.50"'


# --- escaping -------------------------------------------------------------------------------------


def test_autoescape_in_html_but_not_in_text() -> None:
    ctx = context_for({"profile": {"properties": {"first_name": "<script>alert(1)</script> & co"}}})
    html = render("<p>Hi {{ profile.first_name }}</p><a href='{{ links.unsubscribe }}'>x</a>", ctx, autoescape=True)
    assert html == (
        "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt; &amp; co</p><a href='https://shop.example/u/abc?x=1&amp;y=2'>x</a>"
    )
    text = render("Hi {{ profile.first_name }}", ctx, autoescape=False)
    assert text == "Hi <script>alert(1)</script> & co"


# --- the sandbox ----------------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ profile.__class__.__init__.__globals__ }}",
    "{{ profile._data }}",
    "{{ profile | attr('_data') }}",
    "{{ (profile.email | attr('__class__')) }}",
    "{{ '{0.__class__.__mro__}'.format(profile) }}",
    "{{ order.line_items | map(attribute='__class__') | list }}",
    "{{ self._TemplateReference__context }}",
    "{{ profile.get.__self__ }}",
    "{{ 10 ** (10 ** 10) }}",
    "{{ 'x' * 1000000000 }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_sandbox_escapes_raise_template_error(source: str) -> None:
    record = order_record("USD", "1", [{"title": "A"}], properties={"first_name": "Ana"})
    before = repr(record)
    with pytest.raises(TemplateError) as info:
        render(source, context_for(record), autoescape=True, part="html")
    assert info.value.part == "html"
    assert str(info.value).startswith("the html template failed: ")
    assert isinstance(info.value, PermanentActionError)  # fails the same way on a retry
    assert repr(record) == before  # and nothing else happened


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ 1 / 0 }}", "division by zero"),
        ("{% for %}", "syntax error on line 1: "),
        ("{{ order.total | money('NOPE') }}", "'NOPE' is not an ISO 4217 currency code"),
        ("{{ 'abc' | money }}", "money needs a number, not str 'abc'"),
        ("{{ 'soon' | datetime }}", "datetime needs a date-time"),
        ("{{ order.total | nosuchfilter }}", "No filter named 'nosuchfilter'"),
        ("{% include 'other.html' %}", "no loader"),
        ("{% for a in range(3) %}{% endfor %}", "undefined"),
    ],
)
def test_runtime_failures_are_template_errors(source: str, reason: str) -> None:
    with pytest.raises(TemplateError) as info:
        render(source, context_for(order_record("USD", "1", [])), autoescape=False, part="subject")
    assert info.value.part == "subject"
    assert reason in info.value.reason


def test_output_is_capped() -> None:
    source = "{% for a in order.line_items %}{% for b in order.line_items %}" + "x" * 100 + "{% endfor %}{% endfor %}"
    items = [{"n": i} for i in range(200)]  # 200 * 200 * 100 characters = 4 MB
    with pytest.raises(TemplateError, match=f"longer than {MAX_OUTPUT}"):
        render(source, context_for(order_record("USD", "1", items)), autoescape=False)


def test_rendering_is_cached_and_repeatable() -> None:
    ctx = context_for({"profile": {"properties": {"first_name": "Ana"}}})
    for _ in range(3):
        assert render("Hi {{ profile.first_name }}", ctx, autoescape=False) == "Hi Ana"


# --- check_template -------------------------------------------------------------------------------


def test_check_template_accepts_good_templates() -> None:
    assert check_template(ITEMS_TEMPLATE) == []
    good = (
        "{% set greeting = 'Hi' %}{{ greeting }} {{ profile.first_name | default('there') | title }}"
        "{% for i in cart.items %}{{ loop.index }}. {{ i.title | upper }}{% endfor %}"
        "{% if profile.tags is defined and 'vip' in profile.tags %}VIP{% endif %}"
        "{{ product.price | money }} {{ run.id }} {{ flow.name }} {{ store.currency }} {{ links.unsubscribe }}"
        "{{ event.occurred_at | date('short') }}"
    )
    assert check_template(good) == []


def test_check_template_reports_syntax_errors_with_the_template_line() -> None:
    ((message, hint),) = check_template("Hello\n{% for item in order.line_items %}\n{{ item.title }}")
    assert message.startswith("template syntax error on line 3: unexpected end of template")
    assert hint is not None
    ((message, _),) = check_template("Hi {{ profile.first_name }")
    assert message == "template syntax error on line 1: unexpected '}'"


def test_check_template_reports_unknown_variables_with_hints() -> None:
    assert check_template("Hi {{ profle.first_name }}") == [('unknown variable "profle"', 'did you mean "profile"?')]
    ((message, hint),) = check_template("Hi {{ first_name }}")
    assert message == 'unknown variable "first_name"'
    assert hint is not None
    assert "profile.first_name" in hint
    ((message, hint),) = check_template("{{ cycler }}")
    assert hint == "Jinja's cycler is not available in storeflow templates"


def test_check_template_reports_unknown_filters_and_tests() -> None:
    assert check_template("{{ order.total | monye }}") == [('unknown filter "monye"', 'did you mean "money"?')]
    assert check_template("{% if order is vip %}{% endif %}{{ order is vip }}") == [
        ('unknown test "vip"', "use one of Jinja's built-in tests, e.g. defined, none, number, string")
    ]


def test_check_template_reports_everything_at_once_by_line() -> None:
    source = "Hi {{ profle.name }}\n{{ order.total | monye }}\n{{ profile.__class__.__mro__ }}\n{% include 'x' %}"
    assert [message for message, _ in check_template(source)] == [
        'unknown variable "profle" on line 1',
        'unknown filter "monye" on line 2',
        '"__class__" cannot be used in a template on line 3',
        "templates cannot include, import or extend other templates on line 4",
    ]


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("{{ profile.__class__ }}", "__class__"),
        ("{{ profile['_data'] }}", "_data"),
        ("{{ profile | attr('__dict__') }}", "__dict__"),
        ("{{ order.line_items | map(attribute='__class__.__name__') | list }}", "__class__.__name__"),
    ],
)
def test_check_template_reports_internal_names(source: str, name: str) -> None:
    assert check_template(source) == [
        (
            f'"{name}" cannot be used in a template',
            "names starting with _ are internal; use the record's fields, e.g. profile.first_name",
        )
    ]


@pytest.mark.parametrize("source", [None, 12, ["{{ x }}"]])
def test_only_text_is_a_template(source: Any) -> None:
    with pytest.raises(TemplateError, match="a template must be text"):
        render(source, {}, autoescape=False, part="to")


def test_recursion_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="recursion"):
        render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", {}, autoescape=False)


def test_whole_rupiah_show_no_cents_but_fractions_are_kept() -> None:
    from decimal import Decimal

    from storeflow.flows.templates import build_context

    ctx = build_context({}, locale="id_ID", timezone="UTC", currency="IDR", flow={}, links={})
    assert render("{{ 150000 | money }}", ctx, autoescape=False) == "Rp150.000"
    assert render("{{ x | money }}", {**ctx, "x": Decimal("150000.50")}, autoescape=False) == "Rp150.000,50"
    usd = build_context({}, locale="en_US", timezone="UTC", currency="USD", flow={}, links={})
    assert render("{{ 12 | money }}", usd, autoescape=False) == "$12.00"
