"""Code shared by every role: the ECS event model, configuration loading and the `soc` command."""

__version__ = "0.1.0"
