"""Prometheus metrics of the hub, served at /metrics."""
from prometheus_client import Counter, Histogram

accepted = Counter("casehub_envelopes_accepted_total", "Envelopes stored on arrival", ["channel"])
refused = Counter("casehub_envelopes_refused_total", "Inbound requests refused", ["channel", "reason"])
steps = Counter("casehub_step_runs_total", "Step runs by outcome", ["step", "outcome"])
relayed = Counter("casehub_outbox_relayed_total", "Outbox rows delivered", ["kind"])
relay_batch = Histogram("casehub_outbox_batch_seconds", "Time to relay one outbox batch")
