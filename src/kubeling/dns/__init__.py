"""Cluster DNS: the ``cluster.local`` zone served from watches (``dns.server.DnsServer``)."""
