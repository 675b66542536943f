# convoflow's one image: the API, the Celery worker, Beat, Flower and the migration all run from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, from pyproject.toml alone: a change to the code does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The code runs from /app (imports resolve from the working directory, as in a checkout) and stays
# owned by root; the service user may write only to /app/data (Beat's schedule, a SQLite file if used).
RUN useradd --create-home --uid 10001 --user-group convoflow \
    && mkdir -p /app/data \
    && chown convoflow:convoflow /app/data
COPY . .

USER convoflow
EXPOSE 8000 5555

# The compose file runs the other services from this image with their own commands.
CMD ["python", "main.py"]
