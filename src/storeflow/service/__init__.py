"""Application services over the store: flows, runs, profiles and API keys."""
