"""The 47 live flows of a growing store: the six sample flows (src/storeflow/templates) and 41
variations a marketing manager would add over a few months.

Subscribers: a second welcome note per locale, a lead-source tag. Browsing: browse abandonment, a
premium-browser tag, a view counter. Carts: a quick add-to-cart reminder, high-value checkout
reminders per currency (IDR, BRL, USD, each its own threshold and wait), an A/B test with a discount
against a control group, a VIP cart reminder, a lost-cart tag, a multi-item tag. Orders: a
confirmation (transactional), first-order thank-you, cross-sell, review request (next weekday
10:00), win-back (25 days, then Tuesday or Thursday 10:00), high-value order notes and team emails
per currency, order tags (domestic/international, single/multi item), repeat and loyal buyers,
property counters, VIP gold tiers per currency and a platinum tier. Stock: back-in-stock and
sold-out product tags, a critical low-stock email to the team, restock notes. Engagement: openers,
clickers, unsubscribes. Schedules: a weekly (Monday 08:00) and a monthly team digest (cron).

Only email, notify_team (via email), tag/untag, set_property, note and the product actions (the
sample flows' hide/publish) act: no network action other than email. Every flow is ``status: live``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from storeflow.app import Storeflow

SAMPLES: Final = ("abandoned-cart", "hide-sold-out", "low-stock-alert", "republish-restocked", "vip", "welcome")
LOCALES: Final = ("pt_BR", "id_ID", "en_US")
# Per-currency thresholds: a "high value" cart or order, and a year's spend for VIP gold.
HIGH_VALUE: Final = {"IDR": 1_500_000, "BRL": 600, "USD": 150}
GOLD_SPEND: Final = {"IDR": 4_000_000, "BRL": 1_500, "USD": 400}
CART_WAIT: Final = {"IDR": "3h", "BRL": "2h", "USD": "90m"}


def _sample(name: str) -> str:
    return (resources.files("storeflow") / "templates" / f"{name}.yaml").read_text(encoding="utf-8")


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "".join(pad + line if line.strip() else line for line in text.splitlines(keepends=True))


def _by_locale(pt: str, id_: str, en: str) -> str:
    """One line of Jinja choosing the profile's language (English for anyone else)."""
    return (f"{{% if profile.locale == 'pt_BR' %}}{pt}{{% elif profile.locale == 'id_ID' %}}{id_}"
            f"{{% else %}}{en}{{% endif %}}")


def _email(step_id: str, name: str, subject: tuple[str, str, str], body: tuple[str, str, str], link: str,
           *, kind: str = "marketing", extra_html: str = "") -> str:
    """An email step (at indent 0, as a list item) in the three languages, with a tracked link and
    the unsubscribe link, HTML and text."""
    unsubscribe = _by_locale("Cancelar inscrição", "Berhenti berlangganan", "Unsubscribe")
    button = _by_locale("Ver na loja", "Lihat di toko", "Shop now")
    html = (f'<p>{_by_locale(*body)}</p>\n{extra_html}<p><a href="{link}">{button}</a></p>\n'
            f'<p style="color:#777;font-size:12px"><a href="{{{{ links.unsubscribe }}}}">{unsubscribe}</a></p>\n')
    text = f"{_by_locale(*body)}\n\n{link}\n\n{unsubscribe}: {{{{ links.unsubscribe }}}}\n"
    return (f"- id: {step_id}\n  name: {json.dumps(name, ensure_ascii=False)}\n  action: email\n  kind: {kind}\n"
            f"  subject: |-\n    {_by_locale(*subject)}\n"
            f"  html: |\n{_indent(html, 4)}  text: |\n{_indent(text, 4)}")


def _team(step_id: str, subject: str, text: str) -> str:
    return (f"- id: {step_id}\n  action: notify_team\n  via: email\n  subject: |-\n    {subject}\n"
            f"  text: |\n{_indent(text, 4)}")


def _flow(flow_id: str, name: str, head: str, steps: str) -> str:
    """A flow document: ``head`` holds trigger, reentry, exit_when (YAML at indent 0)."""
    return (f"id: {flow_id}\nname: {json.dumps(name, ensure_ascii=False)}\nstatus: live\n{head.strip()}\n"
            f"steps:\n{_indent(steps, 2)}")


_ITEMS: Final = ("<ul>{% for item in order.line_items or event.items %}<li>{{ item.quantity }} x {{ item.title }}: "
                 "{{ item.price | money }}</li>{% endfor %}</ul>\n")


def _if_else_order_tag(comparison: str, yes: str, no: str) -> str:
    return (f"- if: {{field: {comparison}}}\n  then:\n    - action: tag\n      target: order\n      tags: [{yes}]\n"
            f"  else:\n    - action: tag\n      target: order\n      tags: [{no}]\n")


def _subscriber_flows() -> list[str]:
    out = []
    waits = {"pt_BR": "5d", "id_ID": "4d", "en_US": "6d"}
    for locale in LOCALES:
        slug = locale.lower().replace("_", "-")
        email = _email(f"welcome-{slug}-best-sellers", "Best-sellers, if no order yet",
                       ("{{ profile.first_name or 'Oi' }}, os favoritos da casa",
                        "{{ profile.first_name or 'Hai' }}, produk terlaris kami",
                        "{{ profile.first_name or 'Hi' }}, our customers' favourites"),
                       ("Estes são os mais vendidos do mês. Frete grátis acima de R$ 200.",
                        "Ini produk terlaris bulan ini. Gratis ongkir untuk belanja di atas Rp300.000.",
                        "These are this month's best-sellers, picked by people like you."),
                       "https://demo.store/collections/best-sellers")
        steps = (f"- wait: {waits[locale]}\n"
                 "- if: {history: {event: order_placed}, exists: false}\n  then:\n" + _indent(email, 4) +
                 "  else:\n    - action: tag\n      tags: [welcome-buyer]\n")
        out.append(_flow(f"welcome-series-{slug}", f"Welcome series, second note ({locale})", f"""
reentry: once
trigger:
  event: subscribed
  filter:
    all:
      - {{field: event.channel, eq: email}}
      - {{field: profile.locale, eq: {locale}}}
""", steps))
    out.append(_flow("lead-source", "Tag the lead source", """
reentry: once
trigger: {event: subscribed}
""", """- if: {field: event.form, starts_with: newsletter}
  then:
    - action: tag
      tags: [lead-newsletter-popup]
  else:
    - action: tag
      tags: [lead-other]
- action: set_property
  property: lead_source
  value: popup
"""))
    return out


def _browse_flows() -> list[str]:
    email = _email("browse-reminder", "Still looking?",
                   ("Ainda de olho em {{ event.title }}?", "Masih lihat-lihat {{ event.title }}?",
                    "Still thinking about {{ event.title }}?"),
                   ("{{ event.title }} está esperando por você.", "{{ event.title }} masih menunggumu.",
                    "{{ event.title }} is still here, from {{ event.price | money(event.currency) }}."),
                   "{{ event.url }}")
    premium = "\n".join(f"      - {{all: [{{field: event.currency, eq: {c}}}, {{field: event.price, gte: {v // 3}}}]}}"
                        for c, v in HIGH_VALUE.items())
    return [
        _flow("browse-abandonment", "Browse abandonment", """
reentry: {every: 3d}
trigger:
  event: product_viewed
  filter: {field: profile.email, exists: true}
exit_when:
  history: {event: order_placed, since: flow_start}
  exists: true
""", "- wait_for: {event: product_added_to_cart, timeout: 2h}\n  on_event:\n    - exit: added to cart\n"
            "- wait: 2h\n" + email),
        _flow("browse-premium", "Tag premium browsers", f"""
reentry: once
trigger:
  event: product_viewed
  filter:
    any:
{premium}
""", "- action: tag\n  tags: [premium-browser]\n"),
        _flow("browse-counter", "Count product views", """
reentry: always
trigger: {event: product_viewed, filter: {field: profile.email, exists: true}}
""", "- action: set_property\n  property: product_views\n  increment: 1\n"),
    ]


def _cart_flows() -> list[str]:
    ordered = "exit_when:\n  history: {event: order_placed, since: flow_start}\n  exists: true\n"
    out = [_flow("cart-quick-reminder", "Added to cart, no checkout (1 hour)", """
reentry: {every: 1d}
trigger: {event: product_added_to_cart, filter: {field: profile.email, exists: true}}
""" + ordered, "- wait_for: {event: checkout_started, timeout: 1h}\n  on_event:\n    - exit: checked out\n"
        "  on_timeout:\n"
        + _indent(_email("cart-quick-email", "Your cart",
                         ("Você esqueceu {{ event.title }}", "Kamu lupa {{ event.title }}",
                          "You left {{ event.title }} in your cart"),
                         ("Seu item ainda está no carrinho.", "Barangmu masih di keranjang.",
                          "Your {{ event.title }} is still in your cart."), "{{ event.url }}"), 4))]
    for currency, value in HIGH_VALUE.items():
        slug = currency.lower()
        out.append(_flow(f"cart-high-value-{slug}", f"High-value checkout reminder ({currency})", f"""
reentry: {{every: 7d}}
trigger:
  event: checkout_started
  filter:
    all:
      - {{field: event.currency, eq: {currency}}}
      - {{field: event.value, gte: {value}}}
""" + ordered, "- action: tag\n  tags: [high-value-cart]\n"
            f"- wait_for: {{event: order_placed, timeout: {CART_WAIT[currency]}}}\n"
            "  on_event:\n    - exit: ordered\n  on_timeout:\n"
            + _indent(_email(f"cart-high-value-{slug}-email", "A personal note",
                             ("Podemos ajudar com seu pedido?", "Ada yang bisa kami bantu?",
                              "Can we help with your order?"),
                             ("Seu carrinho de {{ cart.value | money }} está guardado.",
                              "Keranjangmu senilai {{ cart.value | money }} masih tersimpan.",
                              "Your {{ cart.value | money }} cart is saved; reply and we'll help."),
                             "{{ cart.checkout_url }}"), 4)))
    out.append(_flow("cart-discount-test", "Abandoned checkout: discount A/B test", """
reentry: {every: 14d}
trigger: {event: checkout_started, filter: {field: profile.email, exists: true}}
""" + ordered, "- wait: 6h\n- split:\n    - name: discount\n      weight: 50\n      steps:\n"
        + _indent(_email("cart-discount-email", "5% off your cart",
                         ("5% de desconto no seu carrinho", "Diskon 5% untuk keranjangmu",
                          "5% off your cart, today only"),
                         ("Use VOLTA5 hoje.", "Pakai KEMBALI5 hari ini.", "Use COMEBACK5 today."),
                         "{{ cart.checkout_url }}"), 8)
        + "    - name: control\n      weight: 50\n      steps:\n"
        "        - action: note\n          text: control group\n"))
    out.append(_flow("cart-vip", "VIP abandoned checkout", """
reentry: {every: 3d}
trigger:
  event: checkout_started
  filter: {field: profile.tags, contains: vip}
""" + ordered, "- wait: 30m\n" + _email("cart-vip-email", "VIP reminder",
                                        ("Reservamos seu carrinho, VIP", "Keranjangmu kami simpan, VIP",
                                         "We held your cart, VIP"),
                                        ("Frete grátis para você.", "Gratis ongkir untukmu.", "Free shipping for you."),
                                        "{{ cart.checkout_url }}")))
    out.append(_flow("cart-lost", "Tag lost carts", """
reentry: {every: 7d}
trigger: {event: checkout_started}
""" + ordered, """- wait: 5d
- action: tag
  tags: [lost-cart]
- action: set_property
  property: lost_carts
  increment: 1
"""))
    out.append(_flow("cart-multi-item", "Tag multi-item checkouts", """
trigger: {event: checkout_started, filter: {field: event.items.1, exists: true}}
""", "- action: tag\n  tags: [multi-item-cart]\n"))
    return out


def _order_flows() -> list[str]:
    ordered = "exit_when:\n  history: {event: order_placed, since: flow_start}\n  exists: true\n"
    out = [
        _flow("order-confirmation", "Order confirmation", "trigger: {event: order_placed}\n",
              _email("order-confirmation-email", "Confirmation",
                     ("Pedido {{ order.number }} confirmado", "Pesanan {{ order.number }} dikonfirmasi",
                      "Order {{ order.number }} confirmed"),
                     ("Recebemos seu pedido de {{ order.total | money }}.",
                      "Pesananmu senilai {{ order.total | money }} sudah kami terima.",
                      "We got your order of {{ order.total | money }}."),
                     "https://demo.store/account/orders", kind="transactional", extra_html=_ITEMS)),
        _flow("first-order-thanks", "First-order thank-you", "trigger: {event: order_placed}\n",
              "- if: {history: {event: order_placed}, count: {eq: 1}}\n  then:\n    - action: tag\n"
              "      tags: [first-order]\n"
              + _indent(_email("first-order-email", "Thank you",
                               ("Obrigado pela primeira compra!", "Terima kasih atas pesanan pertamamu!",
                                "Thank you for your first order!"),
                               ("É um prazer ter você como cliente.", "Senang kamu belanja di sini.",
                                "It means a lot to a small shop like ours."),
                               "https://demo.store/pages/our-story"), 4)),
        _flow("cross-sell", "Cross-sell a week after an order",
              "reentry: {every: 14d}\ntrigger: {event: order_placed}\n"
              + ordered, "- wait: 7d\n" + _email("cross-sell-email", "You might also like",
                                                 ("Combina com o que você comprou", "Cocok dengan belanjaanmu",
                                                  "Goes well with your last order"),
                                                 ("Separamos algumas sugestões.", "Ini beberapa rekomendasi.",
                                                  "A few picks that go with what you bought."),
                                                 "https://demo.store/collections/pairings")),
        _flow("review-request", "Review request", "reentry: {every: 30d}\ntrigger: {event: order_placed}\n",
              "- wait: 10d\n- wait_until: {time: \"10:00\", days: [mon, tue, wed, thu, fri]}\n"
              + _email("review-email", "Review",
                       ("Como foi sua compra?", "Bagaimana pesananmu?", "How was your order?"),
                       ("Conte para a gente em um minuto.", "Ceritakan dalam satu menit.",
                        "Tell us in a minute: it helps other customers."), "https://demo.store/reviews/new")),
        _flow("win-back", "Win-back after 25 quiet days", "reentry: always\ntrigger: {event: order_placed}\n" + ordered,
              "- wait: 25d\n- wait_until: {time: \"10:00\", days: [tue, thu]}\n"
              + _email("win-back-email", "We miss you", ("Sentimos sua falta", "Kami merindukanmu", "We miss you"),
                       ("Volte com 10% usando VOLTEI10.", "Kembali dengan diskon 10%: RINDU10.",
                        "Come back for 10% off with MISSYOU10."), "https://demo.store/collections/new")),
    ]
    for currency, value in HIGH_VALUE.items():
        slug = currency.lower()
        big = value * 2
        out.append(_flow(f"high-value-order-{slug}", f"High-value order ({currency})", f"""
trigger:
  event: order_placed
  filter:
    all:
      - {{field: event.currency, eq: {currency}}}
      - {{field: event.total, gte: {big}}}
""", "- action: tag\n  target: order\n  tags: [high-value]\n"
            "- action: note\n  text: high-value order, check fraud signals\n"
            + _team(f"high-value-{slug}-team", "High-value order {{ order.number }}: {{ order.total | money }}",
                    "{{ profile.email }} ordered {{ order.total | money }} ({{ event.items | length }} lines).\n")))
    out.append(_flow("order-tag-destination", "Tag domestic and international orders",
                     "trigger: {event: order_placed}\n", _if_else_order_tag("event.shipping_country, in: [ID]",
                                                                            "domestic", "international")))
    out.append(_flow("order-tag-size", "Tag single and multi-item orders", "trigger: {event: order_placed}\n",
                     _if_else_order_tag("event.items.1, exists: true", "multi-item", "single-item")))
    out.append(_flow("repeat-buyer", "Repeat and loyal buyers", "trigger: {event: order_placed}\n", """\
- if: {history: {event: order_placed}, count: {gte: 2}}
  then:
    - action: tag
      tags: [repeat-buyer]
    - if: {history: {event: order_placed, within: 90d}, count: {gte: 3}}
      then:
        - action: tag
          tags: [loyal]
"""))
    out.append(_flow("order-counters", "Order counters", "trigger: {event: order_placed}\n", """- action: set_property
  property: orders_this_period
  increment: 1
- action: set_property
  property: customer_status
  value: buyer
"""))
    return out


def _vip_flows() -> list[str]:
    out = []
    for currency, spend in GOLD_SPEND.items():
        slug = currency.lower()
        out.append(_flow(f"vip-gold-{slug}", f"VIP gold ({currency})", f"""
trigger: {{event: order_placed, filter: {{field: event.currency, eq: {currency}}}}}
""", f"""- if:
    all:
      - not: {{field: profile.tags, contains: vip-gold}}
      - history: {{event: order_placed, within: 365d, where: {{field: event.currency, eq: {currency}}}}}
        sum: {{of: total, gte: {spend}}}
  then:
    - action: tag
      tags: [vip-gold]
""" + _indent(_email(f"vip-gold-{slug}-email", "Welcome to gold",
                     ("Você agora é cliente ouro", "Kamu sekarang pelanggan emas", "You're now a gold customer"),
                     ("Frete grátis em todos os pedidos.", "Gratis ongkir untuk semua pesanan.",
                      "Free shipping on every order, from today."), "https://demo.store/pages/gold"), 4)))
    out.append(_flow("vip-platinum", "VIP platinum (3 orders in 90 days)", "trigger: {event: order_placed}\n", """- if:
    all:
      - not: {field: profile.tags, contains: vip-platinum}
      - {history: {event: order_placed, within: 90d}, count: {gte: 3}}
  then:
    - action: tag
      tags: [vip-platinum]
""" + _indent(_team("vip-platinum-team", "New platinum customer: {{ profile.email }}",
                    "{{ profile.first_name }} {{ profile.last_name }} placed 3 orders in 90 days.\n"), 4)))
    return out


def _stock_flows() -> list[str]:
    return [
        _flow("back-in-stock-tag", "Tag products back in stock for 3 days", "trigger: {event: stock_restored}\n",
              "- action: tag\n  target: product\n  tags: [back-in-stock]\n- wait: 3d\n"
              "- action: untag\n  target: product\n  tags: [back-in-stock]\n"),
        _flow("low-stock-critical", "Critical stock: email the buyer", """
trigger: {event: stock_low, filter: {field: event.stock, lte: 2}}
""", _team("critical-stock-team", "Critical: {{ product.title or event.product_id }} has {{ event.stock }} left",
           "Reorder {{ event.sku or event.product_id }} today.\n")),
        _flow("sold-out-tag", "Tag and report sold-out products", "trigger: {event: stock_out}\n",
              "- action: tag\n  target: product\n  tags: [sold-out]\n"
              + _team("sold-out-team", "Sold out: {{ product.title or event.product_id }}",
                      "{{ product.title or event.product_id }} sold out at "
                      "{{ event.occurred_at | datetime('short') }}.\n")),
        _flow("sold-out-untag", "Untag restocked products", "trigger: {event: stock_restored}\n",
              "- if: {field: product.tags, contains: sold-out}\n  then:\n    - action: untag\n"
              "      target: product\n      tags: [sold-out]\n"),
        _flow("restock-note", "Note restock deliveries", """
trigger: {event: inventory_changed, filter: {field: event.reason, eq: restock}}
""", "- action: note\n  text: restock delivery received\n"),
    ]


def _engagement_flows() -> list[str]:
    return [
        _flow("engaged-clickers", "Tag engaged clickers", "trigger: {event: message_clicked}\n",
              "- action: tag\n  tags: [engaged]\n- action: set_property\n  property: email_clicks\n  increment: 1\n"),
        _flow("opens-counter", "Count email opens", "trigger: {event: message_opened}\n",
              "- action: set_property\n  property: email_opens\n  increment: 1\n"),
        _flow("unsubscribed-tag", "Tag unsubscribes", "trigger: {event: unsubscribed}\n",
              "- action: tag\n  tags: [unsubscribed-email]\n- action: untag\n  tags: [engaged]\n"),
        _flow("weekly-digest", "Weekly team digest (Monday 08:00)", 'trigger: {schedule: "0 8 * * 1"}\n',
              _team("weekly-digest-team", "Weekly check: win-back and VIP lists",
                    "Good morning! Time to review this week's VIPs, lost carts and win-back replies.\n")),
        _flow("monthly-digest", "Monthly team digest", 'trigger: {schedule: "0 9 1 * *"}\n',
              _team("monthly-digest-team", "Monthly review", "Plan next month's campaigns and restocks.\n")),
    ]


def _build() -> tuple[str, ...]:
    return (*(_sample(name) for name in SAMPLES), *_subscriber_flows(), *_browse_flows(), *_cart_flows(),
            *_order_flows(), *_vip_flows(), *_stock_flows(), *_engagement_flows())


FLOWS_47: Final[tuple[str, ...]] = _build()


def apply_all(sf: Storeflow) -> int:
    """Validates and applies the 47 flows (live) on ``sf``; returns how many."""
    for n, text in enumerate(FLOWS_47):
        sf.flows.apply(sf.flows.validate(text, f"flows47[{n}].yaml"), status="live")
    return len(FLOWS_47)
