from django.apps import AppConfig


class RegistryConfig(AppConfig):
    # The primary key type is settings.DEFAULT_AUTO_FIELD, set once there.
    name = "registry"
    verbose_name = "Registry"

    def ready(self) -> None:
        from registry import lookups  # noqa: F401 — registers the __any lookup
