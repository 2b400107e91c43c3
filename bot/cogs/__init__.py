"""The bot's cogs, loaded as extensions by ``NewsBot.setup_hook``."""
