from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RegistryConfig(AppConfig):
    # The primary key type is settings.DEFAULT_AUTO_FIELD, set once there.
    name = "registry"
    verbose_name = _("Registry")

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from registry import lookups  # noqa: F401 — registers the __any lookup
        from registry.db_statements import generic_plans_keep

        connection_created.connect(generic_plans_keep, dispatch_uid="kyoka-generic-plans")
