"""Reminder collection and delivery services."""
