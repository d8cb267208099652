"""NP resolution: telling a dead peer from a cut network."""
