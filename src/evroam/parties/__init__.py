"""Partners, the credentials handshake and tokens."""
