"""Steps: the units flows are made of, declared with `@step` and found by envelope type.

A flow declares a step with `@step("name", consumes=[types])`. The bus turns each step into a
dramatiq actor that runs it as an idempotent consumer (see `core.consumer`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from core.consumer import StepContext


@dataclass(frozen=True)
class Step:
    name: str
    consumes: tuple[str, ...]
    handler: Callable[[StepContext], None]
    queue: str
    batch: int
    """Envelopes per bus message, run in one transaction. 1 for a step that calls a partner, so
    that a failure elsewhere in a batch never makes it call the partner again."""


_registry: dict[str, Step] = {}


def step(name: str, *, consumes: list[str], queue: str | None = None, batch: int = 100):
    """Declare a step that handles every stored envelope of the types in `consumes`."""

    def register(handler: Callable[[StepContext], None]):
        _registry[name] = Step(name, tuple(consumes), handler, queue or name, batch)
        return handler

    return register


def steps() -> dict[str, Step]:
    return dict(_registry)


def subscribers(envelope_type: str) -> list[str]:
    return [s.name for s in _registry.values() if envelope_type in s.consumes]
