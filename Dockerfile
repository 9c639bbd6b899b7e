# The example app (or your project: replace steps/ and motet.toml) as a small, non-root image.
#   docker build -t motet-example .
#   docker run -p 3000:3000 -e MOTET_TOKEN=change-me motet-example
# Listening on 0.0.0.0 needs an operator token (MOTET_TOKEN): without one motet refuses to start,
# since the console, metrics, state and dead-letter endpoints would be open to the network.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    MOTET_HOST=0.0.0.0 MOTET_PORT=3000 MOTET_LOG_FORMAT=json

RUN useradd --create-home --uid 10001 motet
WORKDIR /app

COPY pyproject.toml README.md LICENSE ./
COPY motet ./motet
RUN pip install '.[redis]'

COPY --chown=motet:motet steps ./steps
COPY --chown=motet:motet motet.toml ./
COPY deploy/healthcheck.py /usr/local/bin/motet-healthcheck
# The SQLite default keeps its file in /app/.motet: writable by the app's user, a volume in compose.
RUN mkdir .motet && chown motet:motet .motet

USER motet
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s \
    CMD ["python", "/usr/local/bin/motet-healthcheck"]
ENTRYPOINT ["motet", "start"]
