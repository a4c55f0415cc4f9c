"""threaddoc: diagnose hung Python programs from the outside."""

__version__ = "0.1.0"
