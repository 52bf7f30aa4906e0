# driftloop: one image for the API (`driftloop serve`), the scheduler (`driftloop scheduler`), the one-shot
# migration job and the MLflow tracking server (`mlflow server`, same MLflow version as the client).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first (read from pyproject.toml), so a source change does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY alembic.ini ./
COPY alembic ./alembic
COPY detectors ./detectors
COPY retrain ./retrain
COPY service ./service
# Editable: `driftloop db upgrade` finds alembic.ini and alembic/ next to the package (service.db.engine.PROJECT_ROOT).
RUN pip install --no-deps -e .

# Non-root. Named volumes mounted on these folders start with this ownership.
RUN useradd --create-home --uid 10001 driftloop \
    && mkdir -p /app/data /mlartifacts \
    && chown driftloop:driftloop /app/data /mlartifacts
USER driftloop

ENV DRIFTLOOP_DATA_DIR=/app/data
EXPOSE 8000 5000
ENTRYPOINT ["driftloop"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
