# The driftgate demo: the Gradio UI and the REST API (/predict, /health, /metrics) in one server.
#
# Build it after the pipeline has run: the model, its card, the dataset the Batch tab checks
# drift against, and the reports the Model and Monitoring tabs show are baked into the image
# from the build context (artifacts/, reports/), so the image serves exactly the model that
# passed the gates. CI builds it on the default branch after the gate job.
#
#   docker build -t driftgate-demo . && docker run -p 7860:7860 driftgate-demo
#
# BASE_IMAGE can be any Debian-like image with python3 (3.11+) and its venv module.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    GRADIO_ANALYTICS_ENABLED=False \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app

# Dependencies in their own layer: it is rebuilt only when pyproject.toml changes. Only what
# the server imports: driftgate's dependencies and its `serve` extra without the pipeline's
# tools (DVC, Evidently, pandera; [tool.driftgate.image] in pyproject.toml). Their versions are
# bounded in pyproject.toml.
COPY pyproject.toml pipelines/ci/serving_requirements.py ./
RUN python3 -m venv /opt/venv \
    && python3 serving_requirements.py pyproject.toml > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt serving_requirements.py

# The code, then what the pipeline produced.
COPY README.md LICENSE ./
COPY src/ src/
RUN pip install --no-deps . && useradd --create-home --uid 10001 driftgate
COPY app.py params.yaml ./
COPY artifacts/model.joblib artifacts/model.json artifacts/dataset.parquet artifacts/
COPY reports/ reports/
RUN mkdir -p logs && chown -R driftgate:driftgate logs

USER 10001
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:7860/health', timeout=4).status != 200)"]
CMD ["python3", "app.py"]
