# One image; the command picks the process: web (gunicorn), worker (RQ) or scheduler (rq cron).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    INSTANCE_PATH=/data
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 app && mkdir /data && chown app /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY newsletter newsletter
COPY jobs jobs
COPY templates templates
COPY migrations migrations
COPY wsgi.py ./
RUN pip install -e .
COPY scripts/docker-entrypoint /usr/local/bin/docker-entrypoint
USER app
EXPOSE 8000
ENTRYPOINT ["docker-entrypoint"]
CMD ["web"]
