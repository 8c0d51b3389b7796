"""The Textual console: thin screens over core services."""
