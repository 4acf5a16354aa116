from django.apps import AppConfig


class RiskConfig(AppConfig):
    name = "risk"

    def ready(self) -> None:
        # Here, not at the top: the warm-up reads models, which exist only once apps are ready.
        from celery.signals import worker_process_init, worker_ready

        from risk.warmup import warm_after_fork, warm_in_threaded_worker

        worker_process_init.connect(warm_after_fork, weak=False, dispatch_uid="risk-warm-fork")
        worker_ready.connect(warm_in_threaded_worker, weak=False, dispatch_uid="risk-warm-ready")
