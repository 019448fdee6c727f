"""`safeguard bench`: the whole system under load, beside the raw speed of the servers it stands on."""
