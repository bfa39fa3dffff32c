# jobchat in a container: python:3.11-slim, installed into a virtual environment in a build
# stage, copied alone into the final image, run as an unprivileged user.
#   docker build -t jobchat .
#   docker run -e JOBCHAT_API_KEY=... -p 8000:8000 -v jobchat:/var/lib/jobchat jobchat
# compose.yaml runs the whole deployment (PostgreSQL, Redis, two servers, a worker, nginx).
# Every dependency ships as a wheel, so nothing is compiled; the build stage's pip cache and
# sources stay behind.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/jobchat
COPY pyproject.toml README.md /src/
COPY jobchat /src/jobchat
RUN /opt/jobchat/bin/pip install /src \
    && /opt/jobchat/bin/pip uninstall --yes pip

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/jobchat --create-home \
        --shell /usr/sbin/nologin jobchat
COPY --from=build /opt/jobchat /opt/jobchat
ENV PATH=/opt/jobchat/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    JOBCHAT_DATABASE_URL=sqlite:////var/lib/jobchat/jobchat.db
USER jobchat
WORKDIR /var/lib/jobchat
VOLUME ["/var/lib/jobchat"]
EXPOSE 8000
# /healthz answers while the process serves (the worker's container turns this off).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["jobchat", "serve", "--host", "0.0.0.0", "--port", "8000"]
