"""Scheduled and bulk sends."""
