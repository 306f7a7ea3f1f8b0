"""Agent sources: each turns something on the host into ECS events."""
