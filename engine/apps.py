from django.apps import AppConfig


class EngineConfig(AppConfig):
    name = "engine"
    label = "engine"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # children: a finished child run settles its parent; outcomes: a step that cannot wait for its limits
        # tells its successors; concurrency: a finished run starts its group's next waiting run
        from engine.core import children, concurrency, outcomes, registry  # noqa: F401

        registry.load_builtin_and_configured()

        from django.db.backends.signals import connection_created

        from engine.dbtypes import timestamps_use_native_loader

        connection_created.connect(timestamps_use_native_loader, dispatch_uid="weft-timestamps")
