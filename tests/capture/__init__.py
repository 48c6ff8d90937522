"""Tests: capture."""
