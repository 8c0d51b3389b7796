"""``mfa-tui serve``: the console in browser tabs, one app process per tab.

``server`` runs the web server (textual-serve with the guards it lacks); ``tab`` is the console
each tab's process runs. Kept apart so that a tab's process never imports the web server.
"""
