"""The echo flow: acknowledges each case event back to the case system with a receipt.

The first flow of the hub, and the one `make demo` starts with: it shows the whole path
(stored, dispatched, handled once, effect in the outbox, out on the feed) without business rules.
"""

from __future__ import annotations

from core.consumer import StepContext
from core.steps import step
from core.store import utcnow
from schemas.case import Receipt


@step("echo", consumes=["case.event_recorded"])
def echo(ctx: StepContext) -> None:
    _ = ctx.document  # validates the event: a bad one is Rejected, naming its field
    receipt = Receipt(of=ctx.envelope.id, step="echo", handled_at=utcnow())
    ctx.emit("hub.receipt", receipt.model_dump(mode="json"))
