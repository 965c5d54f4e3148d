"""Alert delivery in plain Python: once-only sending (delivery.py) over a channel (smtp.py today).

A second channel (Slack, say) is one more module with a class that has `send(subject, body)`, plus
a choice of channel where the notifier resource builds it (resources/notifier.py).
"""
