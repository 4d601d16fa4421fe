"""HTTP routes under ``/api``: parse, call a service, shape JSON. No rules live here."""
