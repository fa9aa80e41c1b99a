"""HubClientInfo: owner-side rules beyond the generic ones: none. When evroam
is the Hub, the Hub issue builds the ClientInfo it pushes on this module."""
