"""Personal data in what people read: a personnummer is masked unless the reader is one the tenant
allows to see it in full (`personal_data_readers`)."""

from __future__ import annotations

from core.config import HubConfig
from core.errors import NotAllowed


def mask(personnummer: str) -> str:
    return f"{personnummer[:8]}-****"


def may_reveal(config: HubConfig, tenant: str, reader: str) -> None:
    """NotAllowed unless `reader` may see personnummer in full in `tenant`'s data."""
    found = config.tenant(tenant)
    if found is None or reader not in found.personal_data_readers:
        raise NotAllowed(
            f"{reader} may not see personnummer in full in tenant {tenant} (tenants.personal_data_readers)",
            where="personnummer",
        )
