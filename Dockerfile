# The project's Airflow image: the official image at the Airflow version pinned in
# requirements.txt, with exactly the pinned environment the test suite runs in, plus the
# pipeline package (which also registers the `xero` connection type as an Airflow provider).
#
# The slim variant carries Airflow without the official image's hundred-odd providers, so
# installing requirements.txt on top yields the tested environment rather than a blend of the
# image's constraints and our lock. tests/deploy checks that AIRFLOW_VERSION equals the pin.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:slim-${AIRFLOW_VERSION}-python${PYTHON_VERSION}

ARG AIRFLOW_VERSION
ENV TZ=UTC \
    GX_ANALYTICS_ENABLED=false

USER airflow

# Dependencies first: this layer is rebuilt only when the lock changes, not on every code edit.
# Naming apache-airflow beside the lock makes pip fail rather than move Airflow itself.
COPY --chown=airflow:0 requirements.txt /opt/intoaec/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/intoaec/requirements.txt

# A regular (not editable) install: the image holds the code it was built from, whatever is
# mounted at run time. dags/ and plugins/ are mounted by docker-compose.yaml instead.
COPY --chown=airflow:0 pyproject.toml /opt/intoaec/pyproject.toml
COPY --chown=airflow:0 include /opt/intoaec/include
RUN pip install --no-cache-dir --no-deps /opt/intoaec \
    && python -c "from intoaec_xero.db import MIGRATIONS; assert (MIGRATIONS / 'env.py').is_file(), MIGRATIONS"
