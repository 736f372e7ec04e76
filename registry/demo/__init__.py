"""Demo data: the fleet's fixed facts (``fleet``) and the seeding of a store (``seeding``)."""
