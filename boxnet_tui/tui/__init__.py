"""The Textual app: the only code that imports Textual. It shows state, the core does the work."""
