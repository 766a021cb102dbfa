# ragsecure: gunicorn (gunicorn.conf.py) as an unprivileged user; the host audit writer runs beside it
# (a second container of the same image in deploy/kubernetes/deployment.yaml, sharing the socket's directory).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=ragsecure.settings.production \
    RAGSECURE_VAR_DIR=/var/lib/ragsecure \
    RAGSECURE_BIND=0.0.0.0:8000

RUN groupadd --system --gid 10001 ragsecure \
    && useradd --system --uid 10001 --gid ragsecure --home-dir /app --shell /usr/sbin/nologin ragsecure

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY --chown=root:root . .
# Static files for the admin, collected at build time with settings that need no secrets.
RUN DJANGO_SETTINGS_MODULE=ragsecure.settings.local RAGSECURE_VAR_DIR=/tmp/build REDIS_URL= \
        python manage.py collectstatic --noinput -v 0 \
    && rm -rf /tmp/build \
    && mkdir -p /var/lib/ragsecure /run/ragsecure \
    && chown ragsecure:ragsecure /var/lib/ragsecure /run/ragsecure

USER 10001:10001
EXPOSE 8000
# gunicorn.conf.py: the buffering worker, its limits, no trusted forwarded headers unless configured.
CMD ["gunicorn", "--config", "gunicorn.conf.py"]
