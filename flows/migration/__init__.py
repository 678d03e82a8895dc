"""Migration: the retiring Logica Omsorg system's records replayed into the new case system, again
and again, until the counts reconcile (contract: specs/legacy-logica-export.md).

- `run.py`: a run over an export folder judges every record (migrated, rejected with a reason,
  duplicate, conflict) in dependency order and sends each migrated record to the case system
  through the store and the outbox; a batch's verdicts, sends and checkpoint commit together, so
  a run killed at any moment resumes without sending a record twice.
- `report.py`: the report per run and per file, the contract's JSON, the quarantine files.
"""
