# pmteam production image: uv-built virtualenv, non-root, `pmteam run`.
# Build: docker build -t pmteam .
# Run:   docker run --env-file .env -p 3000:3000 -v pmteam-data:/data --stop-timeout 40 pmteam
# It listens on 0.0.0.0 whatever PMTEAM_HOST says, keeps SQLite in the /data volume (also for
# a relative URL like .env.example's), and is health-checked on /healthz in both modes.
# With PostgreSQL: compose.yaml; on Kubernetes: deploy/. tests/test_container.py checks this file.

FROM python:3.11-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
# Dependencies first, so code changes don't reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY README.md manifest.yml ./
COPY bot ./bot
COPY agents ./agents
COPY storage ./storage
COPY sandbox ./sandbox
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim-bookworm
RUN groupadd --gid 10001 pmteam \
    && useradd --create-home --uid 10001 --gid 10001 pmteam \
    && mkdir /data && chown 10001:10001 /data
COPY --from=build --chown=pmteam:pmteam /app/.venv /app/.venv
COPY --from=build --chown=pmteam:pmteam /app/manifest.yml /app/manifest.yml
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PMTEAM_HOST=0.0.0.0 \
    PMTEAM_PORT=3000 \
    PMTEAM_LOG_FORMAT=json \
    PMTEAM_DATABASE_URL=sqlite+aiosqlite:////data/pmteam.db
# The working directory is the volume: a relative SQLite URL (.env.example's ./pmteam.db) lands
# in /data too, not in the image. The virtualenv stays in /app.
WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 3000
# pmteam serves /healthz on PMTEAM_PORT in HTTP and Socket Mode alike. Python, as the slim image
# has no curl; an empty PMTEAM_PORT (as in an --env-file) means 3000, as it does for pmteam.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('PMTEAM_PORT') or '3000'), timeout=4)"]
# --host beats PMTEAM_HOST from an --env-file (.env.example's 127.0.0.1 can't be published).
# On SIGTERM pmteam gives running turns 30 s: stop it with --stop-timeout 40 (Docker waits 10 s).
CMD ["pmteam", "run", "--host", "0.0.0.0"]
