"""What many tests set up the same way: fresh databases, a connected sandbox grant, a running Airflow.

Each piece is a plain context manager or function, so a fixture of any scope (or a benchmark)
can use it; the common fixtures built on them live in ``tests/conftest.py``.
"""
