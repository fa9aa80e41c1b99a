"""Tables, repositories and migrations."""
