"""The flexibility marketplace: the rules (pure functions), slot reservations, the
clock-driven lifecycle of offers and contracts, and settlement."""
