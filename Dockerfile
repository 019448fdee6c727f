# One image for every Safeguard service; the container's command picks the service:
#   python -m services.intake | services.routing | services.notifications | services.audit
# Build: docker build -t safeguard .

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/safeguard
WORKDIR /src
# Dependencies first, so editing the code does not re-download them.
COPY pyproject.toml README.md* ./
RUN mkdir -p shared services \
    && touch shared/__init__.py services/__init__.py \
    && /opt/safeguard/bin/pip install . \
    && /opt/safeguard/bin/pip uninstall --yes safeguard
COPY shared ./shared
COPY services ./services
RUN /opt/safeguard/bin/pip install --no-deps .

FROM python:3.11-slim
ENV PATH=/opt/safeguard/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SAFEGUARD_INTAKE_HTTP_HOST=0.0.0.0 \
    SAFEGUARD_INTAKE_HTTP_PORT=8080 \
    SAFEGUARD_NOTIFICATIONS_HTTP_HOST=0.0.0.0 \
    SAFEGUARD_NOTIFICATIONS_HTTP_PORT=8081 \
    SAFEGUARD_POLICY_DIR=/app/deploy/policies \
    SAFEGUARD_MAIL_SINK_DIR=/data/mail \
    SAFEGUARD_CACHE_DIR=/data/cache
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin safeguard \
    && mkdir -p /data/mail /data/cache /data/audit /secrets \
    && chown -R safeguard:safeguard /data /secrets \
    && chmod 0700 /data/audit
COPY --from=build /opt/safeguard /opt/safeguard
WORKDIR /app
COPY deploy/policies ./deploy/policies
USER 10001:10001
EXPOSE 8080 8081 8082
CMD ["python", "-m", "services.intake"]
