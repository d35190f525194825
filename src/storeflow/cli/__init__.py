"""The ``storeflow`` command line (Typer + Rich). Entry point: :func:`storeflow.cli.main.main`."""
