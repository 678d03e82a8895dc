"""SOAP 1.1 document/literal: the provider's order service (client) and the hub's acknowledgement service."""
