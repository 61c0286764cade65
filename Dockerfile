# Linkpact's Slack bot: `docker build -t linkpact .` then
# `docker run --env-file .env -v linkpact-data:/data -p 3000:3000 linkpact` (see docs/slack.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Install the package from source, then drop the source: only the installed package runs.
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY handlers ./handlers
RUN pip install . && rm -rf /src

# An unprivileged user owns the data directory and nothing else.
RUN useradd --system --create-home --uid 10001 linkpact \
    && mkdir /data \
    && chown linkpact:linkpact /data
USER linkpact
WORKDIR /data

# Tracked backlinks and run summaries live in the volume and survive new images.
ENV LINKPACT_DB=/data/linkpact.json \
    PORT=3000
VOLUME ["/data"]

# HTTP mode listens here; Socket Mode (SLACK_APP_TOKEN set) needs no inbound port at all.
EXPOSE 3000
CMD ["linkpact", "serve"]
