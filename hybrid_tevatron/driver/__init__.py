"""Command-line entry points (``python -m hybrid_tevatron.driver.train``)."""
