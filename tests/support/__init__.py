"""Aids shared by tests and benches, never imported by the running service:
loopback servers for the bridge (:mod:`.loopback`) and a VEN that writes raw
OpenADR 2.0b XML (:mod:`.raw_ven`)."""
