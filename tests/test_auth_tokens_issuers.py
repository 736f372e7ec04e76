"""TokenValidator: every accepted token is right, every attack is refused.

Issuer A is the built-in provider (static RSA key, one-hour cap), issuer B
signs ES256 with its own static key, issuer C is a Keycloak-like provider
serving OIDC discovery and JWKS over real HTTP on loopback
(tests/support/jwt_issuers.py).

This part: the accepted tokens. Each issuer's token becomes the right principal
(Keycloak realm roles over HTTP included); issuers share one validator and its
cache; key rotation refetches at most once per interval; an unreachable JWKS or a
discovery document naming another issuer is an invalid token, not a crash."""

from __future__ import annotations

import pytest
from joserfc.jwk import ECKey, RSAKey

from registry.auth import InvalidToken, IssuerConfig, Principal, TokenValidator
from tests.support.jwt_issuers import (  # noqa: F401  (fixtures)
    AUDIENCE,
    ISSUER_A,
    ISSUER_B,
    FakeClock,
    JwksServer,
    claims_a,
    clock,
    instance_dir,
    jwks_server,
    key_a,
    key_b,
    new_rsa,
    sign,
    validator,
)


def test_builtin_token_becomes_principal(validator: TokenValidator, key_a: RSAKey) -> None:
    principal = validator.validate(sign(key_a, claims_a()))
    assert principal == Principal(
        subject="agg-client",
        role="aggregator",
        aggregator_id="AGG-1",
        account_id=None,
        issuer=ISSUER_A,
        client_id="agg-client",
    )


def test_es256_token_from_second_issuer(validator: TokenValidator, key_b: ECKey) -> None:
    claims = claims_a(
        iss=ISSUER_B, role=None, aggregator_id=None, ext={"role": "prosumer", "account": "acc-7", "aggregator": "AGG-2"}
    )
    principal = validator.validate(sign(key_b, claims, alg="ES256"))
    assert (principal.issuer, principal.role, principal.account_id, principal.aggregator_id) == (
        ISSUER_B,
        "prosumer",
        "acc-7",
        "AGG-2",
    )


@pytest.mark.parametrize(
    "roles, expected",
    [
        (["offline_access", "uma_authorization", "prosumer"], "prosumer"),
        (["service", "admin"], "service"),
        (["admin"], "admin"),
    ],
)
def test_keycloak_realm_roles_over_http(
    validator: TokenValidator, jwks_server: JwksServer, roles: list[str], expected: str
) -> None:
    claims = claims_a(
        iss=jwks_server.issuer,
        aud=["account", "broker"],
        role=None,
        azp="admin-ui",
        client_id=None,
        realm_access={"roles": roles},
        account_id="acc-1",
    )
    principal = validator.validate(sign(jwks_server.keys[0], claims))
    assert (principal.role, principal.client_id, principal.account_id) == (expected, "admin-ui", "acc-1")
    assert jwks_server.hits == {"/jwks.json": 1, "/.well-known/openid-configuration": 1}


def test_two_issuers_share_one_validator_and_cache(
    validator: TokenValidator, key_a: RSAKey, jwks_server: JwksServer
) -> None:
    keycloak = claims_a(iss=jwks_server.issuer, aud="account", role=None, realm_access={"roles": ["aggregator"]})
    for _ in range(3):
        assert validator.validate(sign(jwks_server.keys[0], keycloak)).issuer == jwks_server.issuer
        assert validator.validate(sign(key_a, claims_a())).issuer == ISSUER_A
    assert jwks_server.hits["/jwks.json"] == 1


def test_rotation_refetches_once_per_interval(
    validator: TokenValidator, jwks_server: JwksServer, clock: FakeClock
) -> None:
    def token_for(key: RSAKey) -> str:
        return sign(
            key, claims_a(iss=jwks_server.issuer, aud="account", role=None, realm_access={"roles": ["service"]})
        )

    old, new, newest = jwks_server.keys[0], new_rsa("c-2"), new_rsa("c-3")
    validator.validate(token_for(old))
    jwks_server.keys = [new]
    assert validator.validate(token_for(new)).role == "service"  # unknown kid -> one refetch
    assert jwks_server.hits["/jwks.json"] == 2
    jwks_server.keys = [newest]
    with pytest.raises(InvalidToken, match="unknown key"):
        validator.validate(token_for(newest))  # refetched < 30 s ago: no new download
    assert jwks_server.hits["/jwks.json"] == 2
    clock.offset += 31
    assert validator.validate(token_for(newest)).role == "service"
    assert jwks_server.hits["/jwks.json"] == 3
    with pytest.raises(InvalidToken, match="unknown key"):
        validator.validate(token_for(old))  # rotated out
    assert jwks_server.hits["/jwks.json"] == 3


def test_unreachable_jwks_is_invalid_token_not_crash(key_a: RSAKey) -> None:
    validator = TokenValidator(
        [IssuerConfig(issuer="https://gone.example", audience=AUDIENCE, jwks_uri="http://127.0.0.1:9/jwks.json")],
        http_timeout=1.0,
    )
    with pytest.raises(InvalidToken, match="unavailable"):
        validator.validate(sign(key_a, claims_a(iss="https://gone.example")))


def test_discovery_naming_another_issuer_is_refused(jwks_server: JwksServer) -> None:
    validator = TokenValidator(
        [
            IssuerConfig(
                issuer="https://impostor.example",
                audience="account",
                discovery_url=f"{jwks_server.base}/.well-known/openid-configuration",
            )
        ]
    )
    token = sign(jwks_server.keys[0], claims_a(iss="https://impostor.example", aud="account"))
    with pytest.raises(InvalidToken, match="unavailable"):
        validator.validate(token)


def test_a_grid_operator_from_an_external_issuer(validator: TokenValidator, jwks_server: JwksServer) -> None:
    """The dso role maps like the others: a realm role, and its id in the `dso_id` claim."""
    claims = claims_a(
        iss=jwks_server.issuer,
        aud="account",
        role=None,
        aggregator_id=None,
        realm_access={"roles": ["offline_access", "dso"]},
        dso_id="dso-north",
    )
    principal = validator.validate(sign(jwks_server.keys[0], claims))
    assert (principal.role, principal.dso_id, principal.aggregator_id) == ("dso", "dso-north", None)
