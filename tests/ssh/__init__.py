"""Tests: ssh."""
