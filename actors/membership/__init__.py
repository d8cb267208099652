"""Membership: which servers are alive, folded from every heartbeat path."""
