"""Assessment, schedule and improvement-action services."""
