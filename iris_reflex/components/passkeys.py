"""The passkeys script (``assets/js/passkeys.js``), loaded once on the pages that use it.

Why a script tag added by a small inline script: the login and settings pages both need it,
a client-side navigation between them must not load it twice, and the states only ever call
``window.irisPasskeys`` through ``rx.call_script`` (which answers "reload" if it is missing).
"""

from __future__ import annotations

import json

import reflex as rx


def passkeys_loader() -> rx.Component:
    """An inline script that adds ``js/passkeys.js`` to the page once."""
    src = json.dumps(str(rx.asset("js/passkeys.js")))
    return rx.script(
        "(() => {\n"
        "  if (window.irisPasskeys || document.getElementById('iris-passkeys-js')) return;\n"
        "  const script = document.createElement('script');\n"
        "  script.id = 'iris-passkeys-js';\n"
        f"  script.src = {src};\n"
        "  document.head.append(script);\n"
        "})();\n"
    )
