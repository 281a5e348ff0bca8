"""The alert receiver: where Alertmanager's notifications land, for a learner to read.

Alertmanager posts webhooks to POST /alerts; each notification is printed as one JSON line
(so `./lab logs alert-receiver` and `docker logs` show it) and kept for GET /alerts."""
