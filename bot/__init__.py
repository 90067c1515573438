"""The Telegram bot: one small async handler per action over the service."""
