"""Credentials module (credentials.asciidoc), OCPI 2.2.1."""

from __future__ import annotations

from pydantic import Field, model_validator

from evroam.ocpi.base import OcpiModel
from evroam.ocpi.common import Role
from evroam.ocpi.locations import BusinessDetails
from evroam.ocpi.types import URL, CountryCode, PartyId, ci_key

# The token inside a Credentials object is raw (not Base64), ASCII, case-sensitive.
CredentialsToken = Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$", strict=True)


class CredentialsRole(OcpiModel):
    role: Role
    business_details: BusinessDetails
    party_id: PartyId
    country_code: CountryCode


class Credentials(OcpiModel):
    token: str = CredentialsToken
    url: URL
    roles: list[CredentialsRole] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_roles(self) -> Credentials:
        seen = set()
        for r in self.roles:
            key = (r.role, ci_key(r.country_code), ci_key(r.party_id))
            if key in seen:
                raise ValueError(
                    f"roles: ({r.role}, {r.country_code}, {r.party_id}) appears twice; each must be unique"
                )
            seen.add(key)
        return self
