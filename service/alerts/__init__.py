"""Alert webhooks: the events outbox and its signed, retried, recorded deliveries."""
