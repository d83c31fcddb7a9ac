"""GS1 EPCIS 2.0, the standard-facing part of tracechain: pure functions, no node, database or HTTP.

- `schema`: validate capture documents against GS1's JSON schema, with readable problems.
- `identifiers`: EPC URNs and GS1 Digital Links in one canonical form (the subject's name on chain).
- `mapping`: what an event does on chain (`effects_of`) and a line for consumers (`describe`).
- `event_hash`: CBV 2.0 event hash ids by GS1's reference code, never touching the network.
- `builders`: events from plain arguments, for demos.
"""
