"""OpenADR 2.0b bridge: a VTN that turns VEN registrations, reports and opt
responses into registry REST calls, and contracts into OpenADR events
(docs/openadr.md)."""
from .api_client import ApiClient, ApiError, ApiUnavailable
from .contracts import ContractEvents, ContractWatcher
from .runner import BridgeConfig, bridge_from_config, run_bridge, start_bridge_in_thread
from .telemetry import MeasurementBuffer
from .vtn import OpenADRBridge, build_vtn

__all__ = ["ApiClient", "ApiError", "ApiUnavailable", "BridgeConfig", "ContractEvents",
           "ContractWatcher", "MeasurementBuffer", "OpenADRBridge", "bridge_from_config",
           "build_vtn", "run_bridge", "start_bridge_in_thread"]
