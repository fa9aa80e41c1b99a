"""`make demo`: evroam nodes talking to each other on loopback."""
