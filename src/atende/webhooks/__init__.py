"""Result webhooks: signed, kept in a durable outbox and retried until delivered."""
