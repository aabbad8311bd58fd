"""The assembly: builds the running service from the parts (runtime, servers, HTTP API routers, the
`triage` command line). It imports the parts and the core; nothing imports it."""
