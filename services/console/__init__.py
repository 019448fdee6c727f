"""The staff console: sign-in, need-to-know case reading and case commands, as its own service."""
