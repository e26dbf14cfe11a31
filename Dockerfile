# One image for every role of a site (docs/deploy.md):
#   app        gunicorn -c deploy/gunicorn.conf.py        (the default command)
#   worker     crm worker
#   scheduler  crm scheduler
#   migrate    crm migrate
# The site folder (app.yaml and the rest) is copied in at /site by a derived image or mounted
# there read-only; it must be the same on every container of a site.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    CRM_SITE=/site CRM_ENV=production CRM_LOG_FORMAT=json

WORKDIR /opt/crm
COPY pyproject.toml README.md cli.py ./
COPY engine ./engine
COPY web ./web
COPY metadata ./metadata
COPY industry_packs ./industry_packs
COPY deploy ./deploy
RUN pip install '.[deploy]' && useradd --system --home /site crm && mkdir -p /site && chown crm /site

USER crm
EXPOSE 8000 9100
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)" || exit 1
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py"]
