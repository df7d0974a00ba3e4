"""memmesh.gossip: peer-to-peer anti-entropy between replicas (placeholder, filled below)."""
