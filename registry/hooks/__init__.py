"""Eve event hooks, registered from one table.

Eve accepts any attribute name as an event (``on_insertd_x`` is silently
never fired), so :func:`init_app` checks every name against the DOMAIN and
fails at start-up on a typo.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eve import Eve

from registry.hooks import access, flexibility, grid, jobs, marketplace, registry_rules, vens

RESOURCE_EVENTS = (
    "on_pre_GET",
    "on_pre_POST",
    "on_pre_PATCH",
    "on_pre_PUT",
    "on_pre_DELETE",
    "on_post_GET",
    "on_post_POST",
    "on_post_PATCH",
    "on_post_PUT",
    "on_post_DELETE",
    "on_fetched_resource",
    "on_fetched_item",
    "on_fetched_diffs",
    "on_insert",
    "on_inserted",
    "on_replace",
    "on_replaced",
    "on_update",
    "on_updated",
    "on_delete_item",
    "on_deleted_item",
    "on_delete_resource",
    "on_deleted_resource",
)
GLOBAL_EVENTS = RESOURCE_EVENTS + ("on_oplog_push",)

Hook = tuple[str, Callable[..., Any]]


def hook_table() -> list[Hook]:
    """Every (event name, function) the registry registers."""
    return [
        *access.HOOKS,
        *registry_rules.HOOKS,
        *marketplace.HOOKS,
        *jobs.HOOKS,
        *vens.HOOKS,
        *grid.HOOKS,
        *flexibility.HOOKS,
    ]


def check_event_name(name: str, domain: dict[str, Any]) -> None:
    if name in GLOBAL_EVENTS:
        return
    for event in RESOURCE_EVENTS:
        if name.startswith(event + "_") and name[len(event) + 1 :] in domain:
            return
    raise ValueError(f"hook table: '{name}' is not an Eve event for any DOMAIN resource")


def register(app: Eve, table: list[Hook]) -> None:
    for name, function in table:
        check_event_name(name, app.config["DOMAIN"])
        getattr(app, name).__iadd__(function)


def init_app(app: Eve) -> None:
    register(app, hook_table())
    marketplace.init_app(app)
