# The project's Airflow image: Airflow at the version pinned in requirements.txt, plus the
# pipeline package and its pinned dependencies.
FROM apache/airflow:3.3.2-python3.11

USER airflow
COPY --chown=airflow:0 requirements.txt /opt/intoaec/requirements.txt
RUN pip install --no-cache-dir -r /opt/intoaec/requirements.txt

COPY --chown=airflow:0 pyproject.toml /opt/intoaec/pyproject.toml
COPY --chown=airflow:0 include /opt/intoaec/include
RUN pip install --no-cache-dir --no-deps -e /opt/intoaec

ENV TZ=UTC
