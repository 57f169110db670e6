"""A fleet of separate hosts on one machine: network namespaces, a bridge, nftables links.

``gossip-learning fleet`` (:mod:`gossip_learning.fleet.harness`); see docs/fleet.md.
"""
