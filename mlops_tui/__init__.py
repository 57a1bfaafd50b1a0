"""mlops-tui: operate machine-learning model lifecycles from a terminal."""

__version__ = "0.1.0"
