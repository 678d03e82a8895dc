"""The README's example documents are valid: a partner who copies one gets it accepted."""

from __future__ import annotations

import json
import re
from pathlib import Path

from core.config import HubConfig
from core.intake import envelope_from
from schemas.orders import Order

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_order_example_is_a_valid_order_issued_envelope():
    documents = README.read_text(encoding="utf-8").split("## The documents", 1)[1]
    example = json.loads(re.search(r"```json\n(.*?)```", documents, re.S)[1])
    config = HubConfig.model_validate({"tenants": [{"code": "0125", "name": "Ekerö kommun"}]})
    envelope = envelope_from(example, config, sender="case_system")
    order = Order.model_validate(envelope.payload)
    assert (order.kind, order.version, len(order.services)) == ("amend", 2, 2)
