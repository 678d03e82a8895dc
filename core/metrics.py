"""Prometheus metrics of the hub, served at /metrics."""

from prometheus_client import Counter, Gauge, Histogram

accepted = Counter("casehub_envelopes_accepted_total", "Envelopes stored on arrival", ["channel"])
refused = Counter("casehub_envelopes_refused_total", "Inbound requests refused", ["channel", "reason"])
steps = Counter("casehub_step_runs_total", "Step runs by outcome", ["step", "outcome"])
relayed = Counter("casehub_outbox_relayed_total", "Outbox rows delivered", ["kind"])
relay_batch = Histogram("casehub_outbox_batch_seconds", "Time to relay one outbox batch")
loop_up = Gauge("casehub_loop_up", "1 while a background loop works, 0 during an outage of what it needs", ["loop"])
outages = Counter("casehub_outages_total", "Outages a background loop lived through", ["loop"])
partner_up = Gauge(
    "casehub_partner_up", "0 while a partner's calls fail (its circuit breaker is open), else 1", ["partner"]
)
