"""Forecasting: time and shape helpers, demand-response baselines, the day-ahead
model and flexibility estimate, and the advice built from them (pure functions)."""
