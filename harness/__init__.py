"""The test harness: `./lab test`'s suite runner and its compose phase (a private Docker engine,
stand-in images, docker-compose.yml run for real). Not part of the lab a learner runs."""
