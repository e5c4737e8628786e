# The project's Airflow image: the official image at the Airflow version pinned in
# requirements.txt, with exactly the pinned environment the test suite runs in, plus the
# pipeline package (which also registers the `xero` connection type as an Airflow provider).
#
# The slim variant carries Airflow without the official image's hundred-odd providers, so
# installing the lock on top yields the tested environment rather than a blend of the image's
# constraints and our lock. tests/deploy checks that AIRFLOW_VERSION equals the pin.
#
# The base image is pinned by tag only: its digest is not recorded in this repository, and
# none is made up here. To pin it, take the digest from a machine that reaches Docker Hub
# (`docker buildx imagetools inspect apache/airflow:slim-3.3.2-python3.11`, the "Digest:"
# line) and write FROM apache/airflow:slim-${AIRFLOW_VERSION}-python${PYTHON_VERSION}@sha256:...
# (a new AIRFLOW_VERSION then needs a new digest too: the digest wins over the tag).
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:slim-${AIRFLOW_VERSION}-python${PYTHON_VERSION}

ARG AIRFLOW_VERSION
ENV TZ=UTC \
    GX_ANALYTICS_ENABLED=false

USER airflow

# Dependencies first: this layer is rebuilt only when the lock changes, not on every code edit.
# requirements.hashes.txt pins the same versions as requirements.txt, each with its sha256
# hashes: pip refuses any file whose hash is not listed, and any package the lock does not pin.
# The checks around it stop the build if the base image's Airflow or the lock's is not
# AIRFLOW_VERSION (pip would otherwise replace Airflow without a word).
COPY --chown=airflow:0 requirements.hashes.txt /opt/intoaec/requirements.hashes.txt
RUN python -c "import importlib.metadata as m, sys; v = m.version('apache-airflow'); \
sys.exit(None if v == '${AIRFLOW_VERSION}' else f'base image has Airflow {v}, AIRFLOW_VERSION is ${AIRFLOW_VERSION}')" \
    && pip install --no-cache-dir --require-hashes -r /opt/intoaec/requirements.hashes.txt \
    && python -c "import importlib.metadata as m; v = m.version('apache-airflow'); \
assert v == '${AIRFLOW_VERSION}', f'requirements.hashes.txt installed Airflow {v}'"

# A regular (not editable) install: the image holds the code it was built from, whatever is
# mounted at run time. dags/ and plugins/ are mounted by docker-compose.yaml instead.
# The project itself has no published hash: --no-deps (everything it needs came from the
# hashed lock above) and --no-build-isolation (built with the lock's setuptools, so pip
# fetches nothing unhashed for it).
COPY --chown=airflow:0 pyproject.toml /opt/intoaec/pyproject.toml
COPY --chown=airflow:0 include /opt/intoaec/include
RUN pip install --no-cache-dir --no-deps --no-build-isolation /opt/intoaec \
    && python -c "from intoaec_xero.db import MIGRATIONS; assert (MIGRATIONS / 'env.py').is_file(), MIGRATIONS"
