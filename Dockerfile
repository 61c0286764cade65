# Linkpact's Slack bot: `docker build -t linkpact .` then
# `docker run --env-file .env -v linkpact-data:/data -p 3000:3000 linkpact` (see docs/slack.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

# The dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes, not on
# every change to the source. The list is read from pyproject.toml itself (tomllib), so there is no
# second list to keep in step.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the package itself, without resolving the dependencies again; the source is dropped afterwards:
# only the installed package runs.
COPY README.md LICENSE ./
COPY bot ./bot
COPY handlers ./handlers
RUN pip install --no-deps . && rm -rf /src

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

# HTTP mode: GET /healthz on the bot's own port must answer 200 (python's urllib: the slim image has no
# curl). Socket Mode serves no HTTP, so there the check only says the container is running.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; os.environ.get('SLACK_APP_TOKEN') and sys.exit(0); urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]

CMD ["linkpact", "serve"]
