"""storeflow: a self-hosted automation engine for online stores.

The public API is what ``__all__`` lists: ``Storeflow`` (the engine: ingest, flows, worker, views),
``Settings`` (its configuration, also read from ``STOREFLOW_*`` environment variables), the clocks
and ``StoreflowError``, the root of every error it raises. Everything else is internal and may
change. For example, a welcome tag for every new customer, on a SQLite file::

    >>> from storeflow import Settings, Storeflow
    >>> sf = Storeflow(Settings(database_url="sqlite:///store.db"))
    >>> flow = sf.flows.validate('''
    ... id: welcome
    ... name: Welcome
    ... trigger: {event: customer_created}
    ... steps:
    ...   - action: tag
    ...     tags: [welcomed]
    ... ''')
    >>> sf.flows.apply(flow, status="live").change
    'created'
    >>> result = sf.ingest([{"type": "customer_created", "email": "ana@example.com"}])
    >>> sf.drain().runs
    1
    >>> sf.views.profile(result[0].profile_id)["tags"]
    ['welcomed']
    >>> sf.close()

``Storeflow`` and ``Settings`` load on first use, so ``import storeflow`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from storeflow.clock import Clock, SystemClock, VirtualClock
from storeflow.errors import StoreflowError

if TYPE_CHECKING:
    from storeflow.app import Storeflow
    from storeflow.settings import Settings

__all__ = ["Clock", "Settings", "Storeflow", "StoreflowError", "SystemClock", "VirtualClock", "__version__"]

__version__ = "0.1.0"

_LAZY = {"Storeflow": "storeflow.app", "Settings": "storeflow.settings"}


def __getattr__(name: str) -> Any:
    """``Storeflow`` and ``Settings``, imported when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'storeflow' has no attribute {name!r}; "
                             f"its public names are {', '.join(__all__)}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
