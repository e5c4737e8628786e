"""The only part of the package that imports Airflow: connections, hooks, task callables."""
