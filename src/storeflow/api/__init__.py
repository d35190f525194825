"""The storeflow HTTP API (FastAPI)::

    from storeflow.api import create_app
    app = create_app(Storeflow(settings))   # serve with uvicorn; OpenAPI docs at /docs
"""

from storeflow.api.app import create_app

__all__ = ["create_app"]
