"""The tenant and partner configuration: a TOML file validated by pydantic.

```toml
[[tenants]]
code = "0125"
name = "Ekerö kommun"

[[tenants.partners]]
id = "case-system"
kind = "case_system"
token_env = "CASEHUB_TOKEN_0125_CASE_SYSTEM"
```

Secrets never stand in the file: a partner names the environment variable that holds its token.
"""
from __future__ import annotations

import hmac
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PartnerKind = Literal["case_system", "provider", "visit_vendor", "economy", "payroll"]


class Partner(BaseModel):
    """Someone the hub exchanges data with, on behalf of one tenant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    kind: PartnerKind
    token_env: str | None = Field(
        default=None, pattern=r"^[A-Z][A-Z0-9_]*$", description="environment variable holding its bearer token"
    )


class Tenant(BaseModel):
    """A municipality, by its kommunkod."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^\d{4}$")
    name: str = Field(min_length=1)
    partners: list[Partner] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_partners(self) -> Tenant:
        seen: set[str] = set()
        for partner in self.partners:
            if partner.id in seen:
                raise ValueError(f"partner id {partner.id!r} appears twice")
            seen.add(partner.id)
        return self


class HubConfig(BaseModel):
    """Everything configured for this hub: its tenants and their partners."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenants: list[Tenant] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_tenants(self) -> HubConfig:
        codes = [tenant.code for tenant in self.tenants]
        duplicates = sorted({code for code in codes if codes.count(code) > 1})
        if duplicates:
            raise ValueError(f"tenant code {duplicates[0]} appears twice")
        return self

    def tenant(self, code: str) -> Tenant | None:
        return next((tenant for tenant in self.tenants if tenant.code == code), None)


class ConfigError(Exception):
    """The configuration file is wrong; `problems` says where and why, one line each."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def load(path: Path) -> HubConfig:
    """Read and validate the configuration file; ConfigError names each problem's place."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, ["file not found"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(path, [f"not valid TOML: {error}"]) from None
    try:
        return HubConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(path, [_describe(e) for e in error.errors()]) from None


def check(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    """Every problem with the file, including tokens whose environment variable is not set."""
    environ = os.environ if environ is None else environ
    try:
        config = load(path)
    except ConfigError as error:
        return error.problems
    problems = []
    for t, tenant in enumerate(config.tenants):
        for p, partner in enumerate(tenant.partners):
            if partner.token_env and not environ.get(partner.token_env):
                problems.append(
                    f"tenants[{t}].partners[{p}].token_env: environment variable {partner.token_env} is not set"
                )
    return problems


def _describe(error: dict) -> str:
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]).lstrip(".")
    return f"{where or 'file'}: {error['msg']}"


@dataclass(frozen=True)
class Caller:
    """Who is calling: a partner of a tenant, known by its token."""

    tenant: str
    partner: str
    kind: str


class Tokens:
    """Bearer tokens to callers, read once from the environment variables the configuration names."""

    def __init__(self, config: HubConfig, environ: dict[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self._callers: list[tuple[bytes, Caller]] = []
        for tenant in config.tenants:
            for partner in tenant.partners:
                token = environ.get(partner.token_env or "")
                if token:
                    self._callers.append((token.encode(), Caller(tenant.code, partner.id, partner.kind)))

    def caller(self, token: str) -> Caller | None:
        """The caller that holds `token`, compared in constant time; None for an unknown token."""
        found = None
        for known, caller in self._callers:
            if hmac.compare_digest(known, token.encode()):
                found = caller
        return found
