"""The registry's words and fixed quantities, in one place that every layer imports."""
