"""The monthly reimbursement run: visits become the basis each LOV provider is paid on
(rules: specs/reimbursement-rules.md in `rules.py`; the run's life in `run.py`; review and
queries in `review.py` and `queries.py`; the approved basis to the providers in `delivery.py`).
"""
