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

A flow owns its part of the configuration: it registers a section (`section("tenant",
"reimbursement", Rules)`), a table of each tenant's or each partner's, validated with the rest of
the file; `check` names a table no flow registered.
"""

from __future__ import annotations

import hmac
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, model_validator
from pydantic_core import ErrorDetails

from schemas.documents import PartnerKind
from schemas.identity import OrganisationNumber

EnvName = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$", description="the name of an environment variable")]


class SoapChannel(BaseModel):
    """The partner runs a SOAP service at `url`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["soap"]
    url: HttpUrl
    timeout: float = Field(default=10.0, gt=0, le=120)


class RestChannel(BaseModel):
    """The partner runs a REST API at `url`; the hub calls it with the token in `token_env`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["rest"]
    url: HttpUrl
    token_env: EnvName
    timeout: float = Field(default=10.0, gt=0, le=120)


class SftpChannel(BaseModel):
    """Files on the partner's SFTP server: the hub writes to `inbound_dir`, picks up from `outbound_dir`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["sftp"]
    host: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    username: str = Field(min_length=1)
    private_key_env: EnvName = Field(description="environment variable holding the private key file's path")
    host_key: str = Field(
        pattern=r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521) "
        r"[A-Za-z0-9+/=]+$",
        description="the pinned host key: type and base64",
    )
    inbound_dir: str = "inbound"
    outbound_dir: str = "outbound"
    timeout: float = Field(default=10.0, gt=0, le=120)


Channel = Annotated[SoapChannel | RestChannel | SftpChannel, Field(discriminator="type")]


Scope = Literal["tenant", "partner"]
Section = TypeVar("Section", bound=BaseModel)
_sections: dict[tuple[Scope, str], type[BaseModel]] = {}


def section(scope: Scope, name: str, model: type[Section]) -> Callable[[Tenant | Partner], Section]:
    """Register a flow's section: the table `name` of each tenant (scope "tenant") or partner,
    validated by `model`. Returns the function that reads it, the model's defaults where absent."""
    _sections[(scope, name)] = model

    def read(owner: Tenant | Partner) -> Section:
        value = (owner.model_extra or {}).get(name)
        return value if isinstance(value, model) else model.model_validate(value or {})

    return read


class _HasSections(BaseModel):
    """A tenant or partner: its own fields, and the tables of the flows' sections beside them."""

    model_config = ConfigDict(extra="allow", frozen=True)
    scope: ClassVar[Scope]

    @model_validator(mode="after")
    def _flow_sections(self) -> _HasSections:
        extra = self.model_extra or {}
        for name, value in extra.items():
            model = _sections.get((self.scope, name))
            if model is None or isinstance(value, model):
                continue  # a table no flow registered (yet): `check` names it
            try:
                extra[name] = model.model_validate(value)
            except ValidationError as error:
                raise ValueError("; ".join(_describe(e, name) for e in error.errors())) from None
        return self


class Partner(_HasSections):
    """Someone the hub exchanges data with, on behalf of one tenant."""

    scope = "partner"

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    kind: PartnerKind
    token_env: EnvName | None = Field(default=None, description="holds the token the partner calls the hub with")
    organisation_number: OrganisationNumber | None = None
    channel: Channel | None = Field(default=None, description="how the hub reaches the partner")

    @model_validator(mode="after")
    def _provider(self) -> Partner:
        if self.kind == "provider" and (self.organisation_number is None or self.channel is None):
            raise ValueError("a provider needs its organisation_number and channel")
        return self


class Tenant(_HasSections):
    """A municipality, by its kommunkod."""

    scope = "tenant"

    code: str = Field(pattern=r"^\d{4}$")
    name: str = Field(min_length=1)
    partners: list[Partner] = Field(default_factory=list)
    personal_data_readers: list[Annotated[str, Field(pattern=r"^user:[A-Za-z0-9._-]+$")]] = Field(
        default_factory=list, description="operators (user:NAME) who may see personnummer in full in listings"
    )

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

    def provider(self, tenant: str, organisation_number: str) -> Partner | None:
        """The tenant's provider with this organisation number."""
        found = self.tenant(tenant)
        return (
            next(
                (
                    p
                    for p in found.partners
                    if p.kind == "provider"
                    and p.organisation_number is not None
                    and p.organisation_number.digits == organisation_number
                ),
                None,
            )
            if found
            else None
        )

    def partner(self, tenant: str, partner_id: str) -> Partner | None:
        found = self.tenant(tenant)
        return next((p for p in found.partners if p.id == partner_id), None) if found else None


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


def check(path: Path, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every problem with the file, including tokens whose environment variable is not set."""
    environ = os.environ if environ is None else environ
    try:
        config = load(path)
    except ConfigError as error:
        return error.problems
    problems = unknown_sections(config)
    for t, tenant in enumerate(config.tenants):
        for p, partner in enumerate(tenant.partners):
            where = f"tenants[{t}].partners[{p}]"
            references = [("token_env", partner.token_env)]
            if partner.channel is not None:
                references.append(("channel.token_env", getattr(partner.channel, "token_env", None)))
                references.append(("channel.private_key_env", getattr(partner.channel, "private_key_env", None)))
            for field, name in references:
                if name and not environ.get(name):
                    problems.append(f"{where}.{field}: environment variable {name} is not set")
            key_env = getattr(partner.channel, "private_key_env", None)
            if key_env and environ.get(key_env) and not Path(environ[key_env]).is_file():
                problems.append(f"{where}.channel.private_key_env: {environ[key_env]} is not a file")
    return problems


def unknown_sections(config: HubConfig) -> list[str]:
    """The tables of tenants and partners that no loaded flow registered, each with its place."""
    problems = []
    for t, tenant in enumerate(config.tenants):
        owners: list[tuple[str, _HasSections]] = [(f"tenants[{t}]", tenant)]
        owners += [(f"tenants[{t}].partners[{p}]", partner) for p, partner in enumerate(tenant.partners)]
        for where, owner in owners:
            for name in owner.model_extra or {}:
                if (owner.scope, name) not in _sections:
                    known = sorted(n for scope, n in _sections if scope == owner.scope) or ["none"]
                    problems.append(f"{where}.{name}: not a setting, nor a flow's section ({', '.join(known)})")
    return problems


def _describe(error: ErrorDetails, within: str = "") -> str:
    parts = [within] if within else []
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in (*parts, *error["loc"]))
    return f"{where.lstrip('.') or 'file'}: {error['msg'].removeprefix('Value error, ')}"


@dataclass(frozen=True)
class Caller:
    """Who is calling: a partner of a tenant, known by its token."""

    tenant: str
    partner: str
    kind: str


class Tokens:
    """Bearer tokens to callers, read once from the environment variables the configuration names."""

    def __init__(self, config: HubConfig, environ: Mapping[str, str] | None = None) -> None:
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
