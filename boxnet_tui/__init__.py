"""boxnet-tui: pick, curate and retrain BoxNet particle pickers in the terminal."""

__version__ = "0.1.0"
