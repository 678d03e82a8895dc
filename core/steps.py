"""Steps: the units flows are made of, declared with `@step` and found by envelope type.

A flow declares a step with `@step("name", consumes=[types])`. The bus turns each step into a
dramatiq actor that runs it as an idempotent consumer (see `core.consumer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, TypeVar

if TYPE_CHECKING:
    from core.consumer import PartnerCall, StepContext


@dataclass(frozen=True)
class Step:
    name: str
    consumes: tuple[str, ...]
    handler: Callable[[StepContext], PartnerCall | None]
    queue: str
    batch: int
    """Envelopes per bus message, run in one transaction."""
    calls_partner: bool = False
    """The handler returns a `core.consumer.PartnerCall`, made outside any transaction (batch is 1)."""


_registry: dict[str, Step] = {}

Handler = TypeVar("Handler", bound="Callable[[StepContext], PartnerCall | None]")


def step(
    name: str, *, consumes: list[str], queue: str | None = None, batch: int = 100, calls_partner: bool = False
) -> Callable[[Handler], Handler]:
    """Declare a step that handles every stored envelope of the types in `consumes`.

    A step that `calls_partner` does its part in the store and returns the call to make (or None);
    the consumer makes it outside any transaction and has the step record its outcome in another.
    """

    def register(handler: Handler) -> Handler:
        _registry[name] = Step(
            name, tuple(consumes), handler, queue or name, 1 if calls_partner else batch, calls_partner
        )
        return handler

    return register


def steps() -> dict[str, Step]:
    return dict(_registry)


def subscribers(envelope_type: str) -> list[str]:
    return [s.name for s in _registry.values() if envelope_type in s.consumes]
