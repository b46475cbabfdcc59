# syntax=docker/dockerfile:1
# qcn gateway / worker / deploy / besu-init image.
# Everything is fetched at build time from the lock files (uv.lock, package-lock.json);
# the running container downloads nothing.

# --- npm toolchain (solc-js, OpenZeppelin sources, reference Merkle tree) -------------------
FROM node:20.20.2-bookworm-slim AS node
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

# --- Python environment from uv.lock --------------------------------------------------------
FROM python:3.11.13-slim-bookworm AS python-build
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
# Dependencies first (cached layer), then the project itself.
RUN uv sync --frozen --no-dev --no-install-project
COPY app ./app
COPY chain ./chain
COPY parsers ./parsers
COPY models ./models
RUN uv sync --frozen --no-dev

# --- runtime ----------------------------------------------------------------------------------
FROM python:3.11.13-slim-bookworm
ARG QCN_UID=10001
RUN useradd --uid "${QCN_UID}" --create-home --home-dir /home/qcn --shell /usr/sbin/nologin qcn \
    && mkdir -p /var/lib/qcn/deployments /var/lib/qcn/blobs \
    && chown -R qcn:qcn /var/lib/qcn
COPY --from=node /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=node /app/node_modules ./node_modules
COPY --from=python-build /app/.venv ./.venv
COPY pyproject.toml uv.lock package.json package-lock.json README.md ./
COPY app ./app
COPY chain ./chain
COPY parsers ./parsers
COPY models ./models
COPY contracts ./contracts
COPY scripts ./scripts
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    QCN_DEPLOYMENTS_DIR=/var/lib/qcn/deployments \
    QCN_BLOB_DIR=/var/lib/qcn/blobs
USER qcn
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=5 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"]
CMD ["uvicorn", "app.main:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
