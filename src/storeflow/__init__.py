"""storeflow: a self-hosted automation engine for online stores.

Public API::

    from storeflow import Storeflow, Settings, VirtualClock, SystemClock
"""

from storeflow.clock import Clock, SystemClock, VirtualClock
from storeflow.errors import StoreflowError

__all__ = ["Clock", "StoreflowError", "SystemClock", "VirtualClock", "__version__"]

__version__ = "0.1.0"
