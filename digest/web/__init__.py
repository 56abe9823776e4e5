"""The web side: the editor's preview (and later the subscribers' pages)."""
