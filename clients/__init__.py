"""The factory side: the hub client, the CLI and the federated ClientApp (never imports the hub)."""
