FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# The processes run as this user, never as root: a flaw in the web process cannot rewrite the code.
RUN useradd --create-home --uid 10001 kyoka
COPY pyproject.toml ./
COPY portal ./portal
COPY registry ./registry
RUN pip install --no-cache-dir .
COPY . .
# collectstatic needs settings, not a secret: a throwaway key that lives only in this build step.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" DEBUG=false \
    python manage.py collectstatic --noinput \
    && mkdir -p /app/var && chown -R kyoka /app/var
USER kyoka
EXPOSE 8000
# TRUSTED_PROXIES: the proxies gunicorn believes X-Forwarded-* from (the same setting Kyoka uses).
CMD ["sh", "-c", "exec gunicorn portal.wsgi:application -c python:portal.gunicorn_conf --bind 0.0.0.0:8000 --workers 3 --forwarded-allow-ips=\"${TRUSTED_PROXIES:-127.0.0.1}\""]
