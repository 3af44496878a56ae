"""Users, crews, districts and bearer tokens."""
