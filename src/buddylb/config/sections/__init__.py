"""One module per configuration section (SPEC §2.1); each registers its keywords in
`Block` tables next to its handlers, and `config.parser` joins their `TOP` tables."""
