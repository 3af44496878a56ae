"""Customer text messages: an encrypted outbox sent by the job workers through a gateway."""
