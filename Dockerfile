# One image for every role (api, worker, beat, migrate); docker-compose.yml picks the
# command. Runtime dependencies only: no dev extras, no compilers.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Every package at the version and hash that `make lock` recorded, before the code: the
# layer is rebuilt only when the lock changes. Then the project alone, with the locked
# setuptools as its build backend.
COPY requirements.lock /app/
RUN pip install --require-hashes -r requirements.lock
COPY . /app
RUN pip install --no-deps --no-build-isolation . \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin osutrack

# Nothing at run time needs root (and Celery warns when it runs as root).
USER osutrack

EXPOSE 8000
CMD ["granian", "--interface", "asgi", "--host", "0.0.0.0", "--port", "8000", \
     "--workers", "2", "--backpressure", "4096", "--http", "1", "--no-ws", \
     "api_shim.asgi:app"]
