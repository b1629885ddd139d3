"""gunicorn's own logs (access and errors) through the same mask and JSON format as Kyoka's.

`gunicorn -c python:portal.gunicorn_conf ...` (docker-compose.yml, Dockerfile). Without it the
access log would print request paths as they are, invitation and reset tokens included.
"""

accesslog = "-"
errorlog = "-"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask": {"()": "portal.logs.MaskSecretsFilter"}},
    "formatters": {"json": {"()": "portal.logs.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["mask"], "formatter": "json",
                    "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}


def post_worker_init(worker):
    # Before a worker's first request: map the machine's shared near-match index and build the
    # key filter (registry/warm.py), so no check pays a cold load. Post-fork: connections are its own.
    from registry.warm import check_path_warm

    check_path_warm()
