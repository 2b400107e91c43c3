"""newsbot's Discord bot: answers questions about the indexed news articles by quoting them.

Start it with ``python -m bot`` (see ``python -m bot --help``). It reads DISCORD_TOKEN and the
other settings from the environment or ``.env`` (:class:`bot.config.BotSettings`).

Discord set-up: invite the application with the ``bot`` and ``applications.commands`` scopes
and the Send Messages, Send Messages in Threads, Create Public Threads, Embed Links and Read
Message History permissions, and switch on the privileged **Message Content Intent** (developer
portal -> Bot -> Privileged Gateway Intents): the bot reads follow-up questions in its own
threads, which carry no mention.

Importing this package is cheap: the engine (model and index) loads in ``NewsBot.setup_hook``.
"""
