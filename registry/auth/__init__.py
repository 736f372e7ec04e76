"""Authentication for the registry: who is calling, and the built-in provider.

`TokenValidator` turns a bearer token from any configured issuer into a
`Principal`; `provider.init_app` mounts the built-in OAuth 2 provider whose
tokens `builtin_issuer_config` describes and `mint_token` forges for the CLI.
"""
from .accounts import hash_secret
from .issuing import MAX_TOKEN_TTL, builtin_issuer_config, mint_token, validator_from_config
from .keys import load_or_create_signing_key, public_jwks
from .principal import ROLES, Principal
from .provider import init_app
from .tokens import IssuerConfig, InvalidToken, TokenValidator, issuer_from_dict

__all__ = [
    "MAX_TOKEN_TTL", "ROLES", "IssuerConfig", "InvalidToken", "Principal", "TokenValidator",
    "builtin_issuer_config", "hash_secret", "init_app", "load_or_create_signing_key",
    "issuer_from_dict", "mint_token", "public_jwks", "validator_from_config",
]
