"""The node's process tree: starts, watches and restarts every actor, hosts the node's bus."""
