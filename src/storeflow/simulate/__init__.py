"""A demo store on a virtual clock: a seeded catalog, customers, traffic, and a local mailbox.

``storeflow demo`` assembles these: :mod:`~storeflow.simulate.catalog` (products, variants, prices
and stock), :mod:`~storeflow.simulate.people` (customers with names, emails, phones, locales and time
zones), :mod:`~storeflow.simulate.traffic` (browsing, carts, checkouts, orders, stock and email
engagement, ingested through :class:`~storeflow.app.Storeflow` while flows act with their real waits),
:mod:`~storeflow.simulate.mailbox` (an SMTP server that keeps every message as an ``.eml`` file) and
:mod:`~storeflow.simulate.report` (what happened, read back from the store).

Everything is deterministic for a seed: the same seed gives the same catalog, customers and traffic.
"""
