"""Revision files. Each is written once and never edited after it is released."""
