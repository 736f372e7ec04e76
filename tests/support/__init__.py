"""Aids shared by tests and benches, never imported by the running service:
loopback servers for the bridge (:mod:`.loopback`), the loopback world the
OpenADR tests run in (:mod:`.openadr_world`), OpenADR 2.0b messages written by
hand (:mod:`.oadr_messages`) and a VEN that POSTs them as raw XML (:mod:`.raw_ven`)."""
