"""Gunicorn settings Kyoka's web processes rely on; gunicorn reads ./gunicorn.conf.py by itself
(a `-c` config file of its own must carry the same hook)."""


def post_worker_init(worker):
    # In the worker, after it loaded the application (post-fork): the connections are its own.
    from registry.warm import check_path_warm

    check_path_warm()
