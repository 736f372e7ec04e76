"""Who is calling: the identity the rest of the registry filters data by.

A `Principal` is what a validated bearer token boils down to, whatever
provider issued it. Hooks and access filters read only this object, never raw
claims, so adding an OAuth provider never touches the filtering code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The roles (docs/contract.md, "Roles and data scoping"), in the order a role list is searched when a provider
#: (e.g. Keycloak's ``realm_access.roles``) hands over several at once.
ROLES: tuple[str, ...] = ("aggregator", "prosumer", "dso", "service", "admin")


@dataclass(frozen=True)
class Principal:
    """The caller of one request, as established by its bearer token.

    `aggregator_id` scopes an aggregator, `account_id` scopes a prosumer; both
    may be set (a prosumer belongs to an aggregator) or absent (service,
    admin). `dso_id` scopes a grid operator (its grid areas, requests and the
    bids to them). `issuer` says which provider vouched for the caller.
    """

    subject: str
    role: str
    aggregator_id: str | None
    account_id: str | None
    issuer: str
    client_id: str | None = None
    dso_id: str | None = None
    # which token this is (`jti`) and when it expires: for revocation at
    # sign-out; not part of who the caller is
    token_id: str | None = field(default=None, compare=False)
    expires_at: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # A Principal with an unknown role would silently fall through every
        # role table; refuse to build one.
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; expected one of {ROLES}")
