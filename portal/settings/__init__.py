"""`DJANGO_SETTINGS_MODULE=portal.settings`: the local settings when DEBUG is on, else production.

Pick one explicitly with `portal.settings.local`, `portal.settings.production` or
`portal.settings.test`; this module only chooses between the first two for the callers
(manage.py, wsgi, asgi, celery) that name the package. It chooses lazily (PEP 562), when
Django first reads a setting from it: importing `portal.settings.test` imports this package
first, and must not load production's settings (and refuse its secret key) on the way.
"""

from importlib import import_module
from types import ModuleType


def _chosen() -> ModuleType:
    from portal.settings.base import DEBUG

    return import_module("portal.settings.local" if DEBUG else "portal.settings.production")


def __getattr__(name: str) -> object:
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(_chosen(), name)


def __dir__() -> list[str]:
    return dir(_chosen())
