from django.apps import AppConfig


class EngineConfig(AppConfig):
    name = "engine"
    label = "engine"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from engine.core import children, registry  # noqa: F401 (children: a finished child run settles its parent)

        registry.load_builtin_and_configured()
