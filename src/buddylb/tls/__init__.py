"""TLS plumbing that needs no socket: parsing of the hello messages for ssl-session
stickiness (SPEC §5). The handshake itself is io/'s business (the ssl module)."""
