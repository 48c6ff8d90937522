"""Tests: snapshot."""
