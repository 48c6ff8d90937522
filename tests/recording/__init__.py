"""Tests: the flight recorder, replay and diff."""
