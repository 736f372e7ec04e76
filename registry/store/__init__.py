"""The store below Eve's data layer (registry.api.data_layer), on both backends: the
collections every reader and writer uses (``collections``: geo clauses, sessions,
latency), the embedded mongomock backend (``embedded``), geo clauses (``geo``,
``geo_filters``), multi-document writes as one plan (``atomic``), inserts that keep
one document per key (``ingestion``), idempotency keys' storage, MongoDB set-up
(``mongo_setup``) and the one date convention (``clock``)."""
