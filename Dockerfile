# ragdeck image: the RAG API (default command) and the console (docker-compose.yml runs both from it).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# torch first, the CPU build: otherwise pip resolves the multi-GB CUDA build as a dependency of ragdeck.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# Then ragdeck itself (not editable) with the extras docker-compose.yml turns on (REDIS_URL: redis,
# OTEL_EXPORTER_OTLP_ENDPOINT: otel); the sources are removed after the install. tests/test_install.py
# runs this very line, so keep the extras on it.
COPY pyproject.toml README.md /tmp/src/
COPY ragdeck /tmp/src/ragdeck
RUN pip install "/tmp/src[redis,otel]" && rm -rf /tmp/src

# Run as an unprivileged user; state (SQLite, embedded store, eval runs) lives on the /data volume.
RUN useradd --create-home --uid 10001 --user-group ragdeck \
    && mkdir -p /data /app \
    && chown ragdeck:ragdeck /data /app
USER ragdeck
WORKDIR /app
ENV RAGDECK_DATA_DIR=/data
VOLUME /data

EXPOSE 8000 8501
CMD ["ragdeck", "api", "serve", "--all-interfaces", "--port", "8000"]
