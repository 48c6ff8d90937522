"""Tests: host."""
