"""Email through the engine to a real SMTP server: rendering with locale and currency, RFC 8058
unsubscribe, tracking, consent, suppression, template failures, team notifications."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from messaging_harness import Shop, apply, body_of

CART_EMAIL = """
id: cart-email
name: Cart email
reentry: always
trigger: {event: checkout_started}
steps:
  - action: email
    subject: "{{ profile.first_name }}, your cart is waiting"
    html: |
      <p>Hi {{ profile.first_name }}, you left {{ cart.items | length }} item(s) worth {{ cart.value | money }}.</p>
      <p><a href="https://shop.example/cart">Back to your cart</a></p>
      <p><a href="{{ links.unsubscribe }}">Unsubscribe</a></p>
    text: "Total: {{ cart.value | money }}"
"""


def _checkout(email: str, key: str, value: str, currency: str, locale: str, tz: str) -> dict[str, object]:
    return {"type": "checkout_started", "email": email, "id": key,
            "profile": {"first_name": "Ana", "locale": locale, "timezone": tz,
                        "consent": {"email": "subscribed"}},
            "properties": {"checkout_id": key, "value": value, "currency": currency,
                           "items": [{"product_id": "p1", "title": "Batik", "quantity": 1, "price": value}]}}


def test_marketing_email_is_rendered_in_the_customers_locale_and_carries_rfc8058_headers(shop: Shop) -> None:
    apply(shop.sf, CART_EMAIL)
    shop.sf.ingest([_checkout("budi@example.com", "c1", "150000", "IDR", "id_ID", "Asia/Jakarta"),
                    _checkout("ana@example.com", "c2", "99.90", "BRL", "pt_BR", "America/Sao_Paulo")])
    shop.sf.drain()
    budi, ana = shop.inbox.to("budi@example.com")[0], shop.inbox.to("ana@example.com")[0]
    assert budi["Subject"] == "Ana, your cart is waiting"
    assert "Rp" in body_of(budi, "plain") and "150.000" in body_of(budi, "plain")
    assert "R$" in body_of(ana, "plain") and "99,90" in body_of(ana, "plain")
    assert budi["List-Unsubscribe"].startswith("<http://testserver/u/")
    assert budi["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    with shop.sf.store.transaction() as tx:
        records = tx.list_messages(flow_id="cart-email")
    assert {r["status"] for r in records} == {"sent"}
    assert {r["provider_id"] for r in records} == {budi["Message-ID"], ana["Message-ID"]}
    pid = records[0]["profile_id"]
    assert "message_sent" in [e["type"] for e in shop.sf.views.profile(pid)["timeline"]]


def test_one_click_unsubscribe_stops_the_next_marketing_mail_but_not_transactional(shop: Shop, clock: object) -> None:
    apply(shop.sf, CART_EMAIL)
    apply(shop.sf, """
id: receipt
name: Receipt
reentry: always
trigger: {event: order_placed}
steps:
  - action: email
    kind: transactional
    subject: "Order {{ order.id }} confirmed"
    text: "Thanks! {{ order.total | money }}"
""")
    shop.sf.ingest([_checkout("c@example.com", "c1", "10.00", "USD", "en_US", "America/New_York")])
    shop.sf.drain()
    first = shop.inbox.to("c@example.com")[0]
    url = first["List-Unsubscribe"].strip("<>")
    path = urlsplit(url).path
    page = shop.client.get(path)
    assert page.status_code == 200
    assert "Unsubscribe" in page.text and "c…@example.com" in page.text
    assert "c@example.com" not in page.text  # the page never shows the full address
    done = shop.client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    pid = shop.sf.views.find_profile("email", "c@example.com")
    assert pid is not None
    assert shop.sf.views.profile(pid)["consent_email"] == "unsubscribed"
    shop.sf.ingest([_checkout("c@example.com", "c2", "12.00", "USD", "en_US", "America/New_York") | {
        "profile": {"first_name": "Ana"}}])
    shop.sf.ingest([{"type": "order_placed", "email": "c@example.com", "id": "o1",
                     "properties": {"order_id": "o1", "total": "12.00", "currency": "USD"}}])
    shop.sf.drain()
    subjects = [m["Subject"] for m in shop.inbox.to("c@example.com")]
    assert subjects == ["Ana, your cart is waiting", "Order o1 confirmed"]
    with shop.sf.store.transaction() as tx:
        skipped = tx.list_messages(flow_id="cart-email", status="skipped")
    assert len(skipped) == 1
    assert skipped[0]["last_error"] == "unsubscribed from email"
    assert shop.client.post("/u/not-a-real-token").status_code == 404


def test_clicks_and_opens_are_tracked_with_utm(shop: Shop) -> None:
    apply(shop.sf, CART_EMAIL)
    shop.sf.ingest([_checkout("t@example.com", "c1", "10.00", "USD", "en_US", "America/New_York")])
    shop.sf.drain()
    html = body_of(shop.inbox.to("t@example.com")[0], "html")
    tracked = [part.split('"')[0] for part in html.split('href="')[1:]]
    click = next(u for u in tracked if "/t/c/" in u)
    assert any("/u/" in u for u in tracked)  # the unsubscribe link is not rewritten
    response = shop.client.get(urlsplit(click).path, follow_redirects=False)
    assert response.status_code == 302
    target = urlsplit(response.headers["location"])
    assert target.netloc == "shop.example"
    query = parse_qs(target.query)
    assert query["utm_campaign"] == ["cart-email"]
    assert query["utm_medium"] == ["email"]
    pixel = html.split('src="')[1].split('"')[0]
    assert shop.client.get(urlsplit(pixel).path).headers["content-type"] == "image/gif"
    pid = shop.sf.views.find_profile("email", "t@example.com")
    assert pid is not None
    types = [e["type"] for e in shop.sf.views.profile(pid)["timeline"]]
    assert "message_clicked" in types and "message_opened" in types
    assert shop.client.get("/t/c/forged-token", follow_redirects=False).status_code == 404


def test_a_bounce_suppresses_the_address(shop: Shop, clock: object) -> None:
    apply(shop.sf, CART_EMAIL)
    shop.sf.ingest([_checkout("b@example.com", "c1", "10.00", "USD", "en_US", "UTC")])
    shop.sf.drain()
    key = shop.sf.keys.create("private")[1]
    with shop.sf.store.transaction() as tx:
        message = tx.list_messages(flow_id="cart-email")[0]
    r = shop.client.post("/v1/messages/events", headers={"Authorization": f"Bearer {key}"},
                         json={"event": "bounced", "provider_id": message["provider_id"], "reason": "550 no such user"})
    assert r.status_code == 200
    assert r.json()["status"] == "bounced"
    shop.sf.ingest([_checkout("b@example.com", "c2", "11.00", "USD", "en_US", "UTC")])
    shop.sf.drain()
    assert len(shop.inbox.to("b@example.com")) == 1
    with shop.sf.store.transaction() as tx:
        statuses = sorted(m["status"] for m in tx.list_messages(flow_id="cart-email"))
    assert statuses == ["bounced", "suppressed"]


def test_a_template_that_fails_marks_the_send_failed_and_nothing_crashes(shop: Shop) -> None:
    apply(shop.sf, """
id: boom
name: Boom
trigger: {event: checkout_started}
steps:
  - action: email
    subject: "{{ 10 ** 100000000 }}"
    text: hi
  - action: tag
    tags: [after-email]
""")
    shop.sf.ingest([_checkout("x@example.com", "c1", "10.00", "USD", "en_US", "UTC")])
    shop.sf.drain()
    assert shop.inbox.to("x@example.com") == []
    with shop.sf.store.transaction() as tx:
        (message,) = tx.list_messages(flow_id="boom")
    assert message["status"] == "failed"
    assert "too large" in message["last_error"]
    pid = shop.sf.views.find_profile("email", "x@example.com")
    assert pid is not None
    assert shop.sf.views.profile(pid)["tags"] == ["after-email"]


def test_team_notifications_by_email_and_slack(shop: Shop) -> None:
    apply(shop.sf, """
id: big-order
name: Big order alert
trigger:
  event: order_placed
  filter: {field: order.total, gte: 1000}
steps:
  - action: notify_team
    via: email
    subject: "Big order {{ order.id }}"
    text: "{{ order.total | money }} from {{ profile.email }}"
  - action: notify_team
    via: slack
    text: "Big order {{ order.id }}: {{ order.total | money }}"
""")
    shop.sf.ingest([{"type": "order_placed", "email": "vip@example.com", "id": "o9",
                     "properties": {"order_id": "o9", "total": "2500.00", "currency": "USD"}}])
    shop.sf.drain()
    (team_mail,) = shop.inbox.to("team@example.com")
    assert team_mail["Subject"] == "Big order o9"
    assert "$2,500.00" in body_of(team_mail, "plain")
    slack = [r for r in shop.peer.requests if r["path"] == "/slack"]
    assert len(slack) == 1
    assert b"Big order o9" in slack[0]["raw"]


def test_email_sends_within_a_month_of_waits(shop: Shop, clock: object) -> None:
    apply(shop.sf, CART_EMAIL.replace("steps:\n", "steps:\n  - wait: 3d\n"))
    shop.sf.ingest([_checkout("w@example.com", "c1", "10.00", "USD", "en_US", "UTC")])
    shop.sf.drain()
    assert shop.inbox.to("w@example.com") == []
    shop.sf.run_until(clock.now() + timedelta(days=4))  # type: ignore[attr-defined]
    assert len(shop.inbox.to("w@example.com")) == 1
