"""Actions: a service call paired with what the live layer must hear once it has committed.

Zulip's ``do_*`` pattern: the Reflex states and the JSON API call these instead of calling a
service and then deciding themselves who to tell, so a change made through either reaches
the same tabs. Each function takes the caller's database session (services commit before
they return), then publishes an event (``live.outbox``); ``live.fanout`` decides who hears.
``skip_token`` is the acting tab, which updates itself (the API has none).
Reads need no action: callers use the services directly.
"""
