"""Gunicorn settings Kyoka's web processes rely on; gunicorn reads ./gunicorn.conf.py by itself
(a `-c` config file must carry the same hook, as portal/gunicorn_conf.py, which Docker uses, does)."""


def post_worker_init(worker):
    # In the worker, after it loaded the application (post-fork): the connections are its own.
    from registry.warm import check_path_warm

    check_path_warm()
