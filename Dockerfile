FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
COPY portal ./portal
COPY registry ./registry
RUN pip install --no-cache-dir .
COPY . .
RUN SECRET_KEY=build DEBUG=false python manage.py collectstatic --noinput
RUN useradd --create-home kyoka && mkdir -p /app/var && chown -R kyoka /app/var
USER kyoka
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
