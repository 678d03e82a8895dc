"""The operations console under /console: server-rendered pages (Jinja2, one stylesheet, no
JavaScript needed) for IT operations to watch the hub, replay what failed and run its schedules.

Every page wants a logged-in user (else: the login page); every action wants its role (else: 403)
and the session's CSRF token in the form (else: 403). Personal data in kept input is masked until
a person reveals it, and the reveal is audited. `console.py` holds what the pages share, `pages.py`
the hub's own pages; flows add theirs with `Console.add`.
"""

from adapters.console.console import Console, Denied, install

__all__ = ["Console", "Denied", "install"]
