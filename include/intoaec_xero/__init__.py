"""IntoAEC's Xero sync: moves a firm's Xero books into IntoAEC's financial tracking tables.

The package runs without Airflow; only :mod:`intoaec_xero.airflow` imports it.
"""

__version__ = "0.1.0"
