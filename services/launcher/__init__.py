"""`safeguard up`: embedded NATS and PostgreSQL when none is configured, then every service as a process."""
