# pmteam production image: uv-built virtualenv, non-root, `pmteam run`.
# Build: docker build -t pmteam .   Run: docker run --env-file .env -p 3000:3000 pmteam

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
RUN useradd --create-home --uid 10001 pmteam
WORKDIR /app
COPY --from=build --chown=pmteam:pmteam /app/.venv /app/.venv
COPY --from=build --chown=pmteam:pmteam /app/manifest.yml /app/manifest.yml
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PMTEAM_HOST=0.0.0.0 \
    PMTEAM_PORT=3000 \
    PMTEAM_LOG_FORMAT=json \
    PMTEAM_DATABASE_URL=sqlite+aiosqlite:////data/pmteam.db
RUN mkdir /data && chown pmteam:pmteam /data
VOLUME ["/data"]
USER pmteam
EXPOSE 3000
# /healthz answers in HTTP mode; in Socket Mode there is no listener, so the check is skipped.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os,sys,urllib.request; \
sys.exit(0) if os.environ.get('PMTEAM_MODE','http' if not os.environ.get('SLACK_APP_TOKEN') else 'socket')=='socket' \
else urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PMTEAM_PORT','3000')}/healthz\", timeout=4)"
CMD ["pmteam", "run"]
