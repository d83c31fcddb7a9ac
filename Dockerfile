# The tracechain API. The compiled contracts ship inside the package (tracechain/chain/artifacts),
# so the image needs neither Node nor the Solidity compiler; the chain is whatever
# TRACECHAIN_RPC_URL points at (see docker-compose.yml).

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# README.md: pyproject.toml names it as the package's readme, so the build needs it.
COPY pyproject.toml README.md ./
COPY backend ./backend
# A regular (non-editable) install without extras: no test or dev tools in the image.
RUN pip install .


FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TRACECHAIN_DATA_DIR=/data

# /data is created and owned by the service's user before VOLUME, so a fresh volume mounted there
# inherits that ownership and the non-root process can write to it.
RUN groupadd --system --gid 10001 tracechain \
    && useradd --system --uid 10001 --gid tracechain --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin tracechain \
    && mkdir /data \
    && chown tracechain:tracechain /data

COPY --from=build /opt/venv /opt/venv

# An empty working directory: Settings also reads a .env file from the working directory.
WORKDIR /app
VOLUME ["/data"]
USER 10001:10001

EXPOSE 8000
CMD ["tracechain", "serve", "--host", "0.0.0.0", "--port", "8000"]
