"""The calls engine: call records, routing to assistants, and the agent sessions."""
