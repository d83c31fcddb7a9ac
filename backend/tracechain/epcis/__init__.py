"""GS1 EPCIS 2.0: event hashing (CBV 2.0), and in time schema validation and bizStep mapping."""
