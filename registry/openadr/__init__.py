"""OpenADR 2.0b bridge: a VTN that turns VEN registrations, reports and opt
responses into registry REST calls, and contracts into OpenADR events."""
from .api_client import ApiClient, ApiError, ApiUnavailable, MeasurementBuffer
from .runner import BridgeConfig, bridge_from_config, run_bridge, start_bridge_in_thread
from .vtn import OpenADRBridge, build_vtn

__all__ = ["ApiClient", "ApiError", "ApiUnavailable", "BridgeConfig", "MeasurementBuffer",
           "OpenADRBridge", "bridge_from_config", "build_vtn", "run_bridge",
           "start_bridge_in_thread"]
