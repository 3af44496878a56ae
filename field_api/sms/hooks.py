"""The SMS slice's reactions to the job queue (installed by name in
:func:`field_api.wiring.install_hooks`): a dead ``sms.send`` job wipes its message, a retry of
one is refused (its text is gone), and the dead-letter list shows its kind and masked number."""

from __future__ import annotations

from field_api.jobs import service as jobs
from field_api.sms import service


def install() -> None:
    """Register the ``sms.send`` hooks of the job queue (idempotent)."""
    jobs.register_hooks(
        service.JOB_KIND,
        jobs.KindHooks(
            on_dead=service.on_dead,
            before_retry=service.refuse_retry,
            describe=service.describe_job,
        ),
    )
