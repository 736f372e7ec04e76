"""The UI's pages: sign-in, devices, market, operations. Importing this
package registers every view on the blueprint."""

from registry.admin_ui.views import account, devices, market, operations  # noqa: F401
