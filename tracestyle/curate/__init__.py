"""Curate: task sources, teachers, answer extraction and filters."""
