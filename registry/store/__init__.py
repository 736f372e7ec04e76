"""The store: Eve's Mongo data layer with the registry's scoping (``mongo``), the
embedded mongomock backend (``embedded``), geo clauses, atomic multi-document
writes, MongoDB set-up, and the one date convention (``clock``)."""
