"""Reminders of statutory and planned dates: in-app notifications and e-mail, run by APScheduler."""
