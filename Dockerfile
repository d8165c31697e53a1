# One image for every process of the distributed mode: web (default CMD), worker, beat and migrations.
#   docker build -t digest .
#   docker run --rm digest digest --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN groupadd --system --gid 10001 digest \
    && useradd --system --uid 10001 --gid digest --home-dir /home/digest --create-home \
        --shell /usr/sbin/nologin digest

# Build from /src and delete it afterwards: the working directory is on sys.path for `python -m celery`
# and `celery -A`, so a source tree there would shadow the installed package (and its bundled templates).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY digest/ digest/
COPY templates/ templates/
RUN pip install --no-cache-dir . && rm -rf /src

# State (celerybeat-schedule, a generated secret key if DIGEST_SECRET_KEY is unset). Created before
# VOLUME so a fresh named volume is owned by the digest user.
ENV DIGEST_HOME=/var/lib/digest
RUN mkdir -p /var/lib/digest /app && chown digest:digest /var/lib/digest /app
VOLUME ["/var/lib/digest"]

WORKDIR /app
USER digest
EXPOSE 8000
CMD ["digest", "web", "--host", "0.0.0.0", "--port", "8000"]
