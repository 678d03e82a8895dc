"""The LOV order flow: orders from the case system to each provider on its own channel, and the
providers' acknowledgements back (contract: specs/provider-orders.md).

`delivery` sends each version (and reminders), `acknowledgements` takes the providers' answers,
`overdue` flags and reminds the orders not answered in time; `rows` is the order's row they share.
"""
