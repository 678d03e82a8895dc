"""The order flow's part of a provider's configuration: its table `orders`.

```toml
[tenants.partners.orders]
ack_deadline_hours = 24      # the provider's time to acknowledge an order
remind_every_hours = 12      # how often an overdue order is delivered again; default: the deadline
```
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from core.config import section


class OrderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ack_deadline_hours: float = Field(default=24, gt=0, description="a provider's time to acknowledge an order")
    remind_every_hours: float | None = Field(
        default=None, gt=0, description="how often an overdue order is delivered again; default: ack_deadline_hours"
    )

    @property
    def ack_deadline(self) -> dt.timedelta:
        return dt.timedelta(hours=self.ack_deadline_hours)

    @property
    def reminder_interval(self) -> dt.timedelta:
        return dt.timedelta(hours=self.remind_every_hours or self.ack_deadline_hours)


order_settings = section("partner", "orders", OrderSettings)
