"""The alert service: the event catalogue, the alert record, the senders."""
