"""Visit reporting: visits from several mobile-reporting vendors, on any of three channels
(contract: specs/mobile-reporting.md), stored with every version and the time the hub got it.

- push: `POST /api/v1/visits` answers 202 only after the accepted visits are stored;
- poll: `visits.poll` (every minute) reads each polled vendor's pages; a page and the cursor
  after it commit together, so a crash between pages neither skips nor repeats;
- file: `visits.files` (every minute) picks up daily CSV files that have a done-file, stores
  them in chunks, archives them; a file that cannot be read, or is named outside the contract,
  goes to `failed/` with the reason, and the files after it are taken as usual.

A rejected visit (wrong, a conflict with a stored version, or a row the store cannot hold) never
stops the rest of its batch; a batch's rejections are kept as one dead letter with every reason.

The visits' versions are kept by `versions.py`; `poll.py` and `files.py` are the jobs of the
polled and the file channels; push is `routes.py`.
"""
