"""Vietnamese lunar dates and the public-holiday working-day calendar."""
