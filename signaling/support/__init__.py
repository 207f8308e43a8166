"""Live support on the call model (PROTOCOL §9); so far its webhooks."""
