"""Smoke checks: dry, live and against a running gateway, and their reports."""
