# The one application image: the checkout API, the Celery worker, the migrate step, the alert
# receiver and the traffic generator (compose picks the command). Plain Dockerfile syntax, so
# both `docker compose` and Debian's `docker-compose` 1.29 build it.

# --- build: the virtual environment, exactly as uv.lock pins it -----------------------------
FROM python:3.11.13-slim-bookworm AS build

# uv's version is the one ./lab bootstraps (labctl/bootstrap.py), from PyPI.
RUN pip install --no-cache-dir uv==0.13.8

ENV UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
WORKDIR /app
# Dependencies before the code: editing the code does not reinstall them.
COPY pyproject.toml uv.lock .python-version ./
RUN uv sync --frozen --no-dev --no-install-project

# --- runtime: the environment and the code, run by an unprivileged user ---------------------
FROM python:3.11.13-slim-bookworm

# /var/log/lab is the log volume's mount point (compose): a new volume takes its owner from it.
RUN groupadd --system --gid 10001 recordstore \
    && useradd --system --uid 10001 --gid recordstore --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin recordstore \
    && install -d -o recordstore -g recordstore /var/log/lab

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY alembic.ini ./
COPY recordstore ./recordstore
COPY api ./api
COPY worker ./worker
COPY alertreceiver ./alertreceiver
COPY scripts ./scripts
COPY labkit ./labkit
# The rules the scripts share with the storefront (labkit/rules.py reads them).
COPY nginx/html/assets/lab-rules.js ./nginx/html/assets/lab-rules.js

# The code stays root-owned and read-only to the user that runs it.
USER 10001:10001
EXPOSE 8081 9808 9095
# The API's command line as compose runs it (labctl/app_commands.py; tests/static/test_compose.py).
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8081", "--workers", "2", \
     "--no-access-log", "--timeout-keep-alive", "75", "--timeout-graceful-shutdown", "5"]
