"""storeflow benchmarks: ``python -m benchmarks --help``. Results and how to read them: BENCHMARKS.md.

Modules: ``workload`` (events and flows), ``targets`` (fresh SQLite files and PostgreSQL schemas),
``scenarios`` (what is measured), ``report`` (machine info, table, JSON).
"""
