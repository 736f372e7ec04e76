"""Names vulture cannot see being used: each is called by a framework or
protocol, not by our own code. Dead code is not listed here; it is deleted.

Regenerate candidates with ``vulture --make-whitelist`` and keep only names
with a caller outside our code.
"""
# ruff: noqa: B018, F821

# Flask / Eve / Jinja call these by registration or by name
_.session_interface  # Flask's session backend (registry/admin_ui/__init__.py)
_template_globals, _check_csrf, _security_headers, _unauthorized  # blueprint hooks (registry/admin_ui/blueprint.py)
_invalid_page, _page_out_of_range, _unexpected, not_found  # blueprint error handlers
_.words  # read by templates/admin_ui/advice.html
_.open_session, _.save_session  # Flask SessionInterface
login, start_login, logout, toggle_availability, audit  # UI views (routes)
create_offer, withdraw_offer, contract_offer, contract_action  # UI views (routes)
create  # POST /advice-requests (route)
export  # GET /accounts/<id>/export (route; erase is called by name too)
authorize, jwks, _no_framing, _oauth_error  # OAuth provider routes and hooks
_.auth_error  # read back from flask.g by the auth error handler
_.authorized, allowed_roles  # Eve's TokenAuth interface
_._convert_where_request_to_dict, _._convert_sort_request_to_dict, _.mongo_prefix  # Eve's Mongo layer
SafeJSONRenderer  # named in settings.RENDERERS
sender  # blinker signal receiver signature (registry/api/observability.py)
__instancecheck__  # isinstance() on the validator's type classes
frame  # signal handler signature (run.py)
MODULES, RESOURCE  # read by settings.build_domain()
_.log_request  # http.server's request logger, silenced (bench, tests/support)
_.set_mode  # called by tests through the loopback gateway fixture
redis_url, start_session_redis  # tests and conftest import them
# the OpenADR test world (tests/support/openadr_world.py): its tests import and call these
HINTS, ROOT, _.other_aggregator, _.contract_on, world, eventually, _listening
enrolled_ven, store_snapshot, assert_alive, metered, stored_kw  # tests/support/vtn_checks.py, for the raw-XML tests
claims_of, pkce, get_code, exchange  # tests/support/oauth_app.py, for the provider's tests
DEMO_FILES, configured, deployment  # tests/support/secrets_setup.py, for the secrets tests
key_a, claims_a, sign, forge  # tests/support/jwt_issuers.py, for the token tests (key_a: a fixture dependency)
_.do_GET, _.log_message  # http.server's request handler interface (tests/support/jwt_issuers.py)
FORECASTS, all_jobs  # tests/support/jobs_setup.py, for the jobs tests
# tests/support/auth_hosts.py, for the multi-process auth tests
COOKIE, client_token, api_status, kid_of, jwks_kids, keys_cli, generated, shared_secrets, two_hosts
snapshot  # tests/support/db_snapshot.py, for the API security tests and the hostile fuzzer
clear_at_gate, bid_of, hold_bilaterally  # tests/support/dso_market.py, for the clearing's tests
propose, history_and_window  # tests/support/market_setup.py, for the marketplace API, atomicity and system-write tests
later, held_by  # tests/support/killed_workers.py, for the atomicity and system-write tests
an_offer  # tests/support/market_rule_inputs.py, for the marketplace rules tests
shot, shown_devices, shown_total  # tests/support/ui_browser.py, for the admin UI browser tests

# Authlib's model and grant interfaces
_.get_user_id, _.get_client_id, _.get_default_redirect_uri, _.get_allowed_scope, _.check_redirect_uri
_.check_client_secret, _.check_endpoint_auth_method, _.check_response_type, _.check_grant_type
code_challenge, code_challenge_method, _.get_redirect_uri, _.get_scope
expires_in, include_refresh_token, _.validate_requested_scope, TOKEN_ENDPOINT_AUTH_METHODS
_.save_authorization_code, _.query_authorization_code, _.delete_authorization_code
SUPPORTED_CODE_CHALLENGE_METHOD

# the bridge's API for deployments that turn contract polling off (OPENADR_WATCH_SECONDS=0)
