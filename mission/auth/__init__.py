"""Users, roles and API tokens: who may call the service and as what."""
