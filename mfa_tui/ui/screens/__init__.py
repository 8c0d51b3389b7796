"""One screen per module, named after what the user sees."""
