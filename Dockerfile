# The operator image; TF Serving pods also run it as the model puller (`slipway pull`).
# Build: docker build -t ghcr.io/slipway-dev/slipway:0.1.0 .
FROM python:3.11.7-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.7-slim-bookworm
RUN groupadd --gid 10001 slipway && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin slipway
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels slipway && rm -rf /wheels
COPY pipelines /opt/slipway/pipelines
ENV SLIPWAY_PIPELINES_DIR=/opt/slipway/pipelines PYTHONUNBUFFERED=1
USER 10001:10001
ENTRYPOINT ["slipway"]
CMD ["run"]
